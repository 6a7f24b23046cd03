"""Pure domain for chat fine-tuning data: streaming validation, normalisation, splitting.

No Azure SDK imports live here, so it is cheap to import and easy to test.
"""
