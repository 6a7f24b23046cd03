"""The real Python worker library (azure-functions-runtime), driven in-process as the Functions host drives it."""
