"""`python -m copilot.cli` = the `copilot` command."""
from copilot.cli.main import main

main()
