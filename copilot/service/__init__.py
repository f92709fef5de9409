"""The team service (`copilot serve`): one endpoint for every developer, each team's adapter per request.

`front` is the HTTP front door (team keys, limits, streaming, adapter downloads); `keys` the hashed key
store; `fleet` keeps the engines serving the registry's active adapters; `engines/` runs the engines
themselves (llama.cpp's server on CPU, vLLM on GPUs).
"""
