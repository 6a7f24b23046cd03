"""Pure domain of fine-tuning submission: parameters, compute and model checks, names.

No Azure SDK imports: the Azure ML adapter extracts plain values and asks these functions.
"""
