"""The stack checks, one module per concern; checks/check_stack.py runs them."""
