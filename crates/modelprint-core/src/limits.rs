//! Size caps for everything sized by an input file (see SECURITY.md).
//!
//! A size read from a file is first checked against what the file can hold (done by each
//! parser) and then against these caps, *before* anything is allocated; a violation is an
//! `E_INPUT` error naming the file and the field, never an allocation failure.
//!
//! | cap | default | environment variable |
//! |-----|---------|----------------------|
//! | vocabulary size of a sketch collection | 16,777,216 (2²⁴) | `MODELPRINT_MAX_VOCAB` |
//! | prompts per sketch collection | 1,048,576 (2²⁰) | `MODELPRINT_MAX_PROMPTS` |
//! | one buffer sized by an input (matrix, tables) | half the physical memory (8 GiB when unknown) | `MODELPRINT_MAX_MEMORY` (bytes; `K`/`M`/`G`/`T` suffixes) |

use crate::error::{Error, ErrorCode};

pub const DEFAULT_MAX_VOCAB: u64 = 1 << 24;
pub const DEFAULT_MAX_PROMPTS: u64 = 1 << 20;
const FALLBACK_MAX_MEMORY: u64 = 8 << 30;

pub const ENV_MAX_VOCAB: &str = "MODELPRINT_MAX_VOCAB";
pub const ENV_MAX_PROMPTS: &str = "MODELPRINT_MAX_PROMPTS";
pub const ENV_MAX_MEMORY: &str = "MODELPRINT_MAX_MEMORY";

/// Parses `123`, `64K`, `512M`, `8G`, `1T` (binary multiples; case-insensitive, optional `B`/`iB`).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (num, shift) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: u64 = num.trim().parse().ok()?;
    v.checked_mul(1u64 << shift)
}

fn env_size(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => parse_size(&v).filter(|&x| x > 0).unwrap_or(default),
        Err(_) => default,
    }
}

/// Physical memory in bytes (Linux: /proc/meminfo), if known.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Largest accepted vocabulary size (`MODELPRINT_MAX_VOCAB`).
pub fn max_vocab() -> u64 {
    env_size(ENV_MAX_VOCAB, DEFAULT_MAX_VOCAB)
}

/// Largest accepted number of prompts (`MODELPRINT_MAX_PROMPTS`).
pub fn max_prompts() -> u64 {
    env_size(ENV_MAX_PROMPTS, DEFAULT_MAX_PROMPTS)
}

/// Largest buffer, in bytes, sized by an input (`MODELPRINT_MAX_MEMORY`).
pub fn max_memory() -> u64 {
    env_size(
        ENV_MAX_MEMORY,
        physical_memory().map_or(FALLBACK_MAX_MEMORY, |m| m / 2),
    )
}

fn over(field: &str, value: u64, cap: u64, env: &str) -> Error {
    Error::new(
        ErrorCode::Input,
        format!("{field} {value} is above the limit of {cap}"),
    )
    .hint(format!(
        "the file is corrupt or hostile; if it is genuine, raise the limit with {env}=<value> (see SECURITY.md)"
    ))
}

pub fn check_vocab(field: &str, vocab: u64) -> Result<(), Error> {
    let cap = max_vocab();
    if vocab > cap {
        return Err(over(field, vocab, cap, ENV_MAX_VOCAB));
    }
    Ok(())
}

pub fn check_prompts(field: &str, prompts: u64) -> Result<(), Error> {
    let cap = max_prompts();
    if prompts > cap {
        return Err(over(field, prompts, cap, ENV_MAX_PROMPTS));
    }
    Ok(())
}

/// Checks a buffer of `count` items of `item_bytes` each (`what` names it in the message).
pub fn check_alloc(what: &str, count: u64, item_bytes: u64) -> Result<(), Error> {
    let cap = max_memory();
    match count.checked_mul(item_bytes) {
        Some(b) if b <= cap => Ok(()),
        bytes => Err(Error::new(
            ErrorCode::Input,
            format!(
                "{what} needs {} bytes, above the memory limit of {cap} bytes",
                bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string())
            ),
        )
        .hint(format!(
            "the input is corrupt or too large for this machine; raise the limit with {ENV_MAX_MEMORY}=<bytes> (see SECURITY.md)"
        ))),
    }
}

/// A zeroed vector of `count` items, checked against [`max_memory`] and allocated fallibly.
pub fn zeroed<T: Clone + Default>(what: &str, count: usize) -> Result<Vec<T>, Error> {
    let mut v = with_capacity(what, count)?;
    v.resize(count, T::default());
    Ok(v)
}

/// A zeroed `rows × cols` matrix buffer (the product checked for overflow and the cap).
pub fn zeroed2<T: Clone + Default>(what: &str, rows: usize, cols: usize) -> Result<Vec<T>, Error> {
    let count = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::input(format!("{what}: {rows} × {cols} entries overflow")))?;
    zeroed(what, count)
}

/// An empty vector with room for `count` items, checked against [`max_memory`] and
/// reserved fallibly.
pub fn with_capacity<T>(what: &str, count: usize) -> Result<Vec<T>, Error> {
    check_alloc(what, count as u64, std::mem::size_of::<T>() as u64)?;
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| {
        Error::new(
            ErrorCode::Input,
            format!(
                "{what}: cannot allocate {} bytes",
                count as u128 * std::mem::size_of::<T>() as u128
            ),
        )
        .hint(format!(
            "not enough memory on this machine (or lower {ENV_MAX_MEMORY})"
        ))
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn caps_reject_before_allocating() {
        assert!(check_alloc("m", u64::MAX, 4).is_err());
        assert!(check_alloc("m", 10, 4).is_ok());
        let e = zeroed::<f32>("matrix", usize::MAX / 8).unwrap_err();
        assert_eq!(e.code, ErrorCode::Input);
        assert!(e.to_string().contains("matrix"), "{e}");
        assert!(check_vocab("vocab_size", u32::MAX as u64).is_err());
        assert!(check_vocab("vocab_size", 262_144).is_ok());
        assert!(check_prompts("prompts", u32::MAX as u64).is_err());
    }
}
