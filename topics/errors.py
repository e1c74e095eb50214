"""Errors raised by the codecs and the schema store."""

from __future__ import annotations


class CodecError(Exception):
    """Base of every error ``encode``/``decode`` raise; decode raises nothing else."""


class EncodeError(CodecError):
    """A record does not match its schema; the message names the field path."""


class DecodeError(CodecError):
    """Bytes that are not a valid message: truncated, garbage or of another format."""


class UnknownSchemaError(CodecError):
    """The message names a schema (fingerprint or registry id) this process does not know."""


class RegistryError(CodecError):
    """The schema registry could not be reached or answered with an error."""


class SchemaStoreError(Exception):
    """The avro/ directory is inconsistent (bad file name, wrong record name, invalid schema)."""
