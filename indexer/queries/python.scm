; Python definitions. Methods are told apart from functions in code (a function directly in a class body).
(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class
; Docstrings: the first statement of a body when it is a string.
(function_definition body: (block . (expression_statement (string) @docstring)))
(class_definition body: (block . (expression_statement (string) @docstring)))
; Comments (a leading comment block is the docstring when there is no string).
(comment) @comment
