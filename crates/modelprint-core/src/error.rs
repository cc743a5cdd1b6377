//! The one error type modelprint's Rust code reports: a stable [`ErrorCode`] (the same codes
//! as the CLI's `ModelprintError` in src/errors.ts), a message, and optionally the subject it
//! is about (a file, field or model) and a hint saying what to do.
//!
//! The napi binding turns it into a JS `Error` carrying `code`, `subject` and `hint` as
//! properties, so nothing on the TypeScript side parses message text.

use std::fmt;

/// Stable error codes, spelled as in src/errors.ts (`E_INPUT`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Usage,
    Config,
    Input,
    NotFound,
    Permission,
    ModelFormat,
    Tokenizer,
    Device,
    Io,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::Usage,
        ErrorCode::Config,
        ErrorCode::Input,
        ErrorCode::NotFound,
        ErrorCode::Permission,
        ErrorCode::ModelFormat,
        ErrorCode::Tokenizer,
        ErrorCode::Device,
        ErrorCode::Io,
        ErrorCode::Internal,
    ];

    /// The code as the CLI spells it, e.g. `"E_INPUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "E_USAGE",
            ErrorCode::Config => "E_CONFIG",
            ErrorCode::Input => "E_INPUT",
            ErrorCode::NotFound => "E_NOT_FOUND",
            ErrorCode::Permission => "E_PERMISSION",
            ErrorCode::ModelFormat => "E_MODEL_FORMAT",
            ErrorCode::Tokenizer => "E_TOKENIZER",
            ErrorCode::Device => "E_DEVICE",
            ErrorCode::Io => "E_IO",
            ErrorCode::Internal => "E_INTERNAL",
        }
    }

    /// The code of a file-system error: missing → E_NOT_FOUND, denied → E_PERMISSION,
    /// anything else E_IO.
    pub fn of_io(e: &std::io::Error) -> ErrorCode {
        match e.kind() {
            std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorCode::Permission,
            std::io::ErrorKind::OutOfMemory => ErrorCode::Input,
            _ => ErrorCode::Io,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A coded error with its subject (file, field or model) and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    /// What went wrong (without the subject).
    pub message: String,
    /// The file, field or model the error is about.
    pub subject: Option<String>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            subject: None,
            hint: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Usage, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Input, message)
    }
    pub fn device(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Device, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    /// A file-system error on `path` (code from the error kind, subject the path).
    pub fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        Self::new(ErrorCode::of_io(e), e.to_string()).subject(path.display().to_string())
    }
    /// Sets the subject unless one is set already (the innermost subject wins).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        if self.subject.is_none() {
            self.subject = Some(subject.into());
        }
        self
    }
    /// Sets the hint unless one is set already.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_none() {
            self.hint = Some(hint.into());
        }
        self
    }
    /// True for file-system errors (not the content).
    pub fn is_io(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Io | ErrorCode::NotFound | ErrorCode::Permission
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) if !self.message.starts_with(s.as_str()) => write!(f, "{s}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
