"""The project's code: models/, data/, strategies/, callbacks/, loggers/ and utils/ (see README.md)."""
