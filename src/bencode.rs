//! Bencode decoding (BEP 3): bytes → borrowed [`Item`]s that remember their raw byte span.
//!
//! Called by `metainfo` (torrent files), and available to the tracker and extension code for
//! responses and messages. Pure: no I/O.
//!
//! Why decoding is hand-written instead of using `bendy`'s decoder:
//! * bendy refuses dictionaries whose keys are not sorted, and torrents like that exist in the
//!   wild; we must load them.
//! * the info hash is the SHA-1 of the `info` value's bytes *exactly as they stand in the file*
//!   (BEP 3), so every decoded value keeps its raw span instead of being re-encoded.
//!
//! Hostile input is expected: nesting depth is bounded ([`MAX_DEPTH`]), a string's length prefix
//! is checked against the remaining input before anything is borrowed, integer overflow is an
//! error, and nothing here panics. Leniencies: unsorted and duplicate dict keys are accepted
//! (lookups return the first match), as are integers with leading zeros and `-0`.
//!
//! Encoding uses `bendy`'s `Encoder` / `ToBencode` (it always writes sorted keys).

use std::fmt;
use std::ops::Range;

/// Deepest nesting of lists/dicts accepted (a torrent needs about 5).
pub const MAX_DEPTH: usize = 64;

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Item<'a>>),
    /// Key/value pairs in input order (not necessarily sorted, keys may repeat).
    Dict(Vec<(&'a [u8], Item<'a>)>),
}

/// A decoded value together with the exact input bytes it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub value: Value<'a>,
    /// The value's encoding exactly as it stands in the input.
    pub raw: &'a [u8],
    /// Where `raw` lies in the input.
    pub span: Range<usize>,
}

/// Why input is not valid bencode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid bencode at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value spanning the whole input (trailing bytes are an error).
pub fn decode(input: &[u8]) -> Result<Item<'_>, DecodeError> {
    let (item, end) = decode_prefix(input)?;
    if end != input.len() {
        return Err(DecodeError {
            offset: end,
            reason: "trailing data after the value",
        });
    }
    Ok(item)
}

/// Decodes one value at the start of `input`; returns it and the offset just past it
/// (for messages where raw data follows a dictionary, e.g. BEP 9 metadata pieces).
pub fn decode_prefix(input: &[u8]) -> Result<(Item<'_>, usize), DecodeError> {
    let mut parser = Parser { input, pos: 0 };
    let item = parser.value(0)?;
    Ok((item, parser.pos))
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, reason: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError {
            offset: self.pos,
            reason,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Item<'a>, DecodeError> {
        let start = self.pos;
        let value = match self.peek() {
            None => return self.err("unexpected end of input"),
            Some(b'i') => {
                self.pos += 1;
                Value::Int(self.int(b'e')?)
            }
            Some(b'0'..=b'9') => Value::Bytes(self.bytes()?),
            Some(b'l') => {
                if depth >= MAX_DEPTH {
                    return self.err("nesting too deep");
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'e') {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            Some(b'd') => {
                if depth >= MAX_DEPTH {
                    return self.err("nesting too deep");
                }
                self.pos += 1;
                let mut pairs = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'e') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'0'..=b'9') => {
                            let key = self.bytes()?;
                            let value = self.value(depth + 1)?;
                            pairs.push((key, value));
                        }
                        None => return self.err("unexpected end of input in dictionary"),
                        Some(_) => return self.err("dictionary key is not a byte string"),
                    }
                }
                Value::Dict(pairs)
            }
            Some(_) => return self.err("unexpected byte"),
        };
        Ok(Item {
            value,
            raw: &self.input[start..self.pos],
            span: start..self.pos,
        })
    }

    /// Parses `[-]digits` up to `terminator` (consumed). Overflow is an error.
    fn int(&mut self, terminator: u8) -> Result<i64, DecodeError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let mut value: i64 = 0;
        let mut digits = 0usize;
        loop {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    let d = (c - b'0') as i64;
                    // Accumulate towards the sign so i64::MIN is representable.
                    let next = value.checked_mul(10).and_then(|v| {
                        if negative {
                            v.checked_sub(d)
                        } else {
                            v.checked_add(d)
                        }
                    });
                    match next {
                        Some(v) => value = v,
                        None => return self.err("integer overflows 64 bits"),
                    }
                    digits += 1;
                    self.pos += 1;
                }
                Some(c) if c == terminator => {
                    if digits == 0 {
                        return self.err("integer has no digits");
                    }
                    self.pos += 1;
                    return Ok(value);
                }
                None => return self.err("unexpected end of input in integer"),
                Some(_) => return self.err("unexpected byte in integer"),
            }
        }
    }

    /// Parses `len:bytes`, checking `len` against the remaining input first.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len_at = self.pos;
        let len = self.int(b':')?;
        let remaining = self.input.len() - self.pos;
        if len < 0 {
            return Err(DecodeError {
                offset: len_at,
                reason: "negative string length",
            });
        }
        if len as u64 > remaining as u64 {
            return Err(DecodeError {
                offset: len_at,
                reason: "string length runs past the end of input",
            });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.input[start..self.pos])
    }
}

impl<'a> Item<'a> {
    /// For a dict: the value of the first pair with this key.
    pub fn get(&self, key: &str) -> Option<&Item<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A byte string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    pub fn as_list(&self) -> Option<&[Item<'a>]> {
        match &self.value {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Item<'a>)]> {
        match &self.value {
            Value::Dict(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// "integer", "byte string", "list" or "dictionary" (for error messages).
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "byte string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_scalars_and_containers() {
        assert_eq!(decode(b"i42e").unwrap().as_int(), Some(42));
        assert_eq!(decode(b"i-7e").unwrap().as_int(), Some(-7));
        assert_eq!(decode(b"4:spam").unwrap().as_bytes(), Some(&b"spam"[..]));
        assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));
        let list = decode(b"l4:spami3ee").unwrap();
        let items = list.as_list().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_str(), Some("spam"));
        assert_eq!(items[1].as_int(), Some(3));
        assert_eq!(decode(b"le").unwrap().as_list().unwrap().len(), 0);
        assert_eq!(decode(b"de").unwrap().as_dict().unwrap().len(), 0);
    }

    #[test]
    fn integer_limits_and_overflow() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        assert!(decode(b"i9223372036854775808e").is_err());
        assert!(decode(b"i-9223372036854775809e").is_err());
        assert!(decode(b"i99999999999999999999999e").is_err());
        assert!(decode(b"ie").is_err());
        assert!(decode(b"i-e").is_err());
        assert!(decode(b"i1x2e").is_err());
        assert!(decode(b"i12").is_err());
        // lenient: leading zeros and -0
        assert_eq!(decode(b"i007e").unwrap().as_int(), Some(7));
        assert_eq!(decode(b"i-0e").unwrap().as_int(), Some(0));
    }

    #[test]
    fn length_prefixes_are_checked_before_use() {
        assert!(decode(b"5:abc").is_err());
        assert!(decode(b"18446744073709551615:x").is_err());
        assert!(decode(b"99999999999999999999999:x").is_err());
        assert!(decode(b"-1:x").is_err());
        assert!(decode(b"3").is_err());
        assert!(decode(b"3x").is_err());
    }

    #[test]
    fn rejects_structural_errors() {
        assert!(decode(b"").is_err());
        assert!(decode(b"l").is_err());
        assert!(decode(b"d3:fooe").is_err()); // key without value
        assert!(decode(b"di1ei2ee").is_err()); // non-string key
        assert!(decode(b"x").is_err());
        assert!(decode(b"i1ei2e").is_err()); // trailing data
        let err = decode(b"l4:spamx").unwrap_err();
        assert_eq!(err.offset, 7);
        assert!(err.to_string().contains("byte 7"));
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_accepted_in_order() {
        let d = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap();
        let keys: Vec<&[u8]> = d.as_dict().unwrap().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![&b"b"[..], b"a", b"b"]);
        assert_eq!(d.get("b").unwrap().as_int(), Some(1));
        assert_eq!(d.get("a").unwrap().as_int(), Some(2));
        assert!(d.get("c").is_none());
    }

    #[test]
    fn raw_spans_are_exact_input_bytes() {
        let input = b"d4:infod1:zi1e1:ai02ee3:xyzle1:q5:helloe";
        let d = decode(input).unwrap();
        let info = d.get("info").unwrap();
        assert_eq!(info.raw, b"d1:zi1e1:ai02ee");
        assert_eq!(&input[info.span.clone()], info.raw);
        assert_eq!(d.get("q").unwrap().raw, b"5:hello");
        assert_eq!(d.raw, &input[..]);
    }

    #[test]
    fn depth_is_bounded() {
        let ok = [b"l".repeat(MAX_DEPTH), b"e".repeat(MAX_DEPTH)].concat();
        assert!(decode(&ok).is_ok());
        let deep = [b"l".repeat(MAX_DEPTH + 1), b"e".repeat(MAX_DEPTH + 1)].concat();
        assert_eq!(decode(&deep).unwrap_err().reason, "nesting too deep");
        // far deeper than the stack could take if recursion were unbounded
        let very_deep = b"l".repeat(1_000_000);
        assert!(decode(&very_deep).is_err());
        let dicts = b"d1:a".repeat(100_000);
        assert!(decode(&dicts).is_err());
    }

    #[test]
    fn prefix_decoding_reports_the_end() {
        let input = b"d8:msg_typei1e5:piecei0eeRAWDATA";
        let (item, end) = decode_prefix(input).unwrap();
        assert_eq!(&input[end..], b"RAWDATA");
        assert_eq!(item.get("piece").unwrap().as_int(), Some(0));
    }

    #[test]
    fn round_trips_bendy_encoding() {
        use bendy::encoding::ToBencode;
        let mut map = std::collections::BTreeMap::new();
        map.insert("b".to_string(), vec![1i64, -2, 3]);
        map.insert("a".to_string(), vec![]);
        let bytes = map.to_bencode().unwrap();
        assert_eq!(bytes, b"d1:ale1:bli1ei-2ei3eee");
        let d = decode(&bytes).unwrap();
        assert_eq!(d.get("b").unwrap().as_list().unwrap()[1].as_int(), Some(-2));
    }
}
