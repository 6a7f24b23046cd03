"""Local development support (emulators, runners). Never imported by the deployed function app."""
