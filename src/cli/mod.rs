//! The command line's subcommands that live in files of their own.

pub mod reproduce;
pub mod signals;
pub mod sweep;
