//! The core's coded error → a JS `Error` with `code`, `subject` and `hint` properties.
//!
//! Synchronous functions build the JS error directly (they get the `Env` from napi-rs);
//! async tasks keep the core error in the task and build the JS error in `reject`, on the
//! JS thread.

use modelprint_core::{Error as CoreError, ErrorCode};
use napi::bindgen_prelude::*;
use napi::{Env, JsValue, Task};

/// The error a JS caller sees: `message` (subject included), `code`, and when known
/// `subject` and `hint`.
pub(crate) fn js_error(env: &Env, e: &CoreError) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.to_string()))?;
        obj.set("code", e.code.as_str())?;
        if let Some(s) = &e.subject {
            obj.set("subject", s.as_str())?;
        }
        if let Some(h) = &e.hint {
            obj.set("hint", h.as_str())?;
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|_| fallback(e))
}

/// A plain napi error for paths without an `Env` (its `code` is the core code).
pub(crate) fn fallback(e: &CoreError) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

/// A coded error built in the binding itself (argument checks).
pub(crate) fn coded(env: &Env, code: ErrorCode, msg: impl Into<String>) -> Error {
    js_error(env, &CoreError::new(code, msg))
}

/// Holds the core error of a failed `compute` until `reject` can build the JS error.
#[derive(Default)]
pub(crate) struct Pending(Option<CoreError>);

impl Pending {
    /// Records `e` and returns the placeholder napi error for `compute`.
    pub(crate) fn keep(&mut self, e: CoreError) -> Error {
        let placeholder = fallback(&e);
        self.0 = Some(e);
        placeholder
    }
    /// In `Task::reject`: the JS error of the recorded core error (or `err` unchanged).
    pub(crate) fn reject<T>(&mut self, env: &Env, err: Error) -> Result<T> {
        match self.0.take() {
            Some(e) => Err(js_error(env, &e)),
            None => Err(err),
        }
    }
}

/// A computation that napi runs on the libuv thread pool: `run` off the JS thread, its
/// result handed to JS as is, its core error turned into a coded JS error on the JS thread.
pub trait Compute: Send + Sized {
    type Output: ToNapiValue + TypeName + Send + 'static;
    fn run(&self) -> std::result::Result<Self::Output, CoreError>;
}

/// The napi [`Task`] of a [`Compute`] (the one place that keeps a failed run's core error
/// for `reject`).
pub struct CoreTask<C> {
    job: C,
    failed: Pending,
}

impl<C: Compute> CoreTask<C> {
    pub(crate) fn new(job: C) -> AsyncTask<Self> {
        AsyncTask::new(CoreTask {
            job,
            failed: Pending::default(),
        })
    }
}

impl<C: Compute> Task for CoreTask<C> {
    type Output = C::Output;
    type JsValue = C::Output;

    fn compute(&mut self) -> Result<Self::Output> {
        self.job.run().map_err(|e| self.failed.keep(e))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        self.failed.reject(&env, err)
    }
}
