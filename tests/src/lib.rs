//! Integration tests of the Flow compiler.
