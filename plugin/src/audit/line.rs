//! The record line's JSON writer. serde_json's `CompactFormatter` writes every byte (punctuation,
//! numbers, escapes), driven through serde's data model exactly as `serde_json::Serializer` drives
//! it; only strings take a shorter way. serde_json's serializer looks each byte of a string up in
//! its escape table (~11 instructions a byte at the engine's opt-level, most of the record's cost:
//! a line holds ~85 strings, its field and feature names among them); here a string is checked
//! eight bytes at a time for what JSON escapes (`"`, `\`, control characters) and, when it holds
//! none, as nearly all do, copied whole between its quotes. A string that needs escaping is
//! written by serde_json itself. The tests hold the output to `serde_json::to_vec`'s, byte for byte.

use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Error;
use std::io;

/// Writes `value` as JSON at the end of `out`: the bytes `serde_json::to_writer` would write.
pub fn write<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Json { out: Line(out) })
}

/// The line buffer: a `Vec<u8>` whose short writes are copied byte by byte, in line. A record is
/// written in ~250 pieces (each punctuation mark, key and value), most of a few bytes, and `Vec`'s
/// own `write` makes each a call into `extend_from_slice` and `memcpy`. The buffer is reused, so
/// once it has grown to a record's size no byte grows it.
struct Line<'a>(&'a mut Vec<u8>);

/// Pieces up to this many bytes are pushed one by one; longer ones are copied at once.
const SHORT_WRITE: usize = 16;

impl io::Write for Line<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline(always)]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.len() <= SHORT_WRITE {
            self.0.extend(buf.iter().copied());
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Eight copies of a byte, one per byte of a `u64`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// Whether some byte of `w` is below `n` (`n` ≤ 128; exact: the borrow of a subtraction only
/// marks bytes above one that is really below `n`).
const fn has_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(splat(n)) & !w & splat(0x80) != 0
}

/// Whether some byte of `w` is `b`.
const fn has_byte(w: u64, b: u8) -> bool {
    has_below(w ^ splat(b), 1)
}

/// Whether JSON escapes byte `b` (serde_json escapes nothing else: not DEL, not non-ASCII).
const fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether the eight bytes of `word` hold none that JSON escapes.
const fn clean(word: [u8; 8]) -> bool {
    let w = u64::from_ne_bytes(word);
    !(has_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\'))
}

/// Whether `s` goes between quotes as it is: no byte JSON escapes, checked a word at a time (the
/// last word overlapping the one before it when the length is not a multiple of eight); a string
/// shorter than a word byte by byte.
fn plain(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(from) = bytes.len().checked_sub(8) else {
        return !bytes.iter().any(|&b| escaped(b));
    };
    let mut words = bytes.chunks_exact(8);
    let whole = words.all(|w| <[u8; 8]>::try_from(w).is_ok_and(clean));
    let rest = words.remainder().is_empty()
        || bytes
            .get(from..)
            .is_some_and(|w| <[u8; 8]>::try_from(w).is_ok_and(clean));
    whole && rest
}

/// The serializer: serde_json's compact formatter over the line.
struct Json<'a> {
    out: Line<'a>,
}

impl<'b> Json<'b> {
    /// A string value or key: copied between quotes when plain, else written by serde_json.
    fn string(&mut self, s: &str) -> Result<(), Error> {
        if !plain(s) {
            return serde_json::to_writer(&mut self.out, s);
        }
        // One copy (`memcpy`) of the whole string: the quotes are the formatter's.
        let out = &mut self.out;
        CompactFormatter.begin_string(out).map_err(Error::io)?;
        out.0.extend_from_slice(s.as_bytes());
        CompactFormatter.end_string(out).map_err(Error::io)
    }

    /// The start of `{"variant":` (an enum variant with content).
    fn begin_variant(&mut self, variant: &str) -> Result<(), Error> {
        CompactFormatter
            .begin_object(&mut self.out)
            .and_then(|()| CompactFormatter.begin_object_key(&mut self.out, true))
            .map_err(Error::io)?;
        self.string(variant)?;
        CompactFormatter
            .end_object_key(&mut self.out)
            .and_then(|()| CompactFormatter.begin_object_value(&mut self.out))
            .map_err(Error::io)
    }

    /// The end of a variant with content: `}`.
    fn end_variant(&mut self) -> Result<(), Error> {
        CompactFormatter
            .end_object_value(&mut self.out)
            .and_then(|()| CompactFormatter.end_object(&mut self.out))
            .map_err(Error::io)
    }

    /// An array (or an object) of `len` items, in a variant's object when it is one.
    fn compound<'a>(
        &'a mut self,
        variant: Option<&str>,
        len: Option<usize>,
        array: bool,
    ) -> Result<Compound<'a, 'b>, Error> {
        if let Some(v) = variant {
            self.begin_variant(v)?;
        }
        let state = self.open(len, array)?;
        Ok(Compound {
            ser: self,
            state,
            variant: variant.is_some(),
        })
    }

    /// Opens an array (or an object), closed at once when it is known to be empty.
    fn open(&mut self, len: Option<usize>, array: bool) -> Result<State, Error> {
        self.fmt(|out| match array {
            true => CompactFormatter.begin_array(out),
            false => CompactFormatter.begin_object(out),
        })?;
        if len != Some(0) {
            return Ok(State::First);
        }
        self.fmt(|out| match array {
            true => CompactFormatter.end_array(out),
            false => CompactFormatter.end_object(out),
        })?;
        Ok(State::Empty)
    }

    /// `f` with the formatter on the line, its I/O error as serde_json's.
    fn fmt(&mut self, f: impl FnOnce(&mut Line<'_>) -> io::Result<()>) -> Result<(), Error> {
        f(&mut self.out).map_err(Error::io)
    }
}

/// A serializer's methods for booleans and integers: each writes its value with the formatter,
/// through `$through` (`fmt` for a value, `quoted` for a map key).
macro_rules! scalars {
    ($through:ident) => {
        scalars!(
            @ $through,
            serialize_bool write_bool bool,
            serialize_i8 write_i8 i8,
            serialize_i16 write_i16 i16,
            serialize_i32 write_i32 i32,
            serialize_i64 write_i64 i64,
            serialize_i128 write_i128 i128,
            serialize_u8 write_u8 u8,
            serialize_u16 write_u16 u16,
            serialize_u32 write_u32 u32,
            serialize_u64 write_u64 u64,
            serialize_u128 write_u128 u128
        );
    };
    (@ $through:ident, $($method:ident $write:ident $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), Error> {
            self.$through(|out| CompactFormatter.$write(out, v))
        })*
    };
}

/// Where a sequence or a map is: nothing written (and closed already), first item, later items.
#[derive(PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
}

/// A sequence, map or struct being written.
struct Compound<'a, 'b> {
    ser: &'a mut Json<'b>,
    state: State,
    /// Closes a variant's object after the content (tuple and struct variants).
    variant: bool,
}

impl Compound<'_, '_> {
    /// Whether this item is the first, and the next one is not.
    fn first(&mut self) -> bool {
        let first = self.state == State::First;
        self.state = State::Rest;
        first
    }

    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let first = self.first();
        self.ser
            .fmt(|out| CompactFormatter.begin_array_value(out, first))?;
        value.serialize(&mut *self.ser)?;
        self.ser.fmt(|out| CompactFormatter.end_array_value(out))
    }

    fn key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        let first = self.first();
        self.ser
            .fmt(|out| CompactFormatter.begin_object_key(out, first))?;
        key.serialize(MapKey(&mut *self.ser))?;
        self.ser.fmt(|out| CompactFormatter.end_object_key(out))
    }

    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.ser
            .fmt(|out| CompactFormatter.begin_object_value(out))?;
        value.serialize(&mut *self.ser)?;
        self.ser.fmt(|out| CompactFormatter.end_object_value(out))
    }

    /// Closes the array (or object), and the variant's object around it.
    fn close(self, array: bool) -> Result<(), Error> {
        if self.state != State::Empty {
            self.ser.fmt(|out| match array {
                true => CompactFormatter.end_array(out),
                false => CompactFormatter.end_object(out),
            })?;
        }
        if self.variant {
            self.ser.end_variant()?;
        }
        Ok(())
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Json<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    scalars!(fmt);

    /// A NaN or an infinity is `null`, as serde_json writes them.
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if v.is_finite() {
            self.fmt(|out| CompactFormatter.write_f32(out, v))
        } else {
            self.serialize_unit()
        }
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if v.is_finite() {
            self.fmt(|out| CompactFormatter.write_f64(out, v))
        } else {
            self.serialize_unit()
        }
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.fmt(|out| CompactFormatter.write_byte_array(out, v))
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.fmt(|out| CompactFormatter.write_null(out))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.begin_variant(variant)?;
        value.serialize(&mut *self)?;
        self.end_variant()
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        self.compound(None, len, true)
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.compound(Some(variant), Some(len), true)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        self.compound(None, len, false)
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.compound(Some(variant), Some(len), false)
    }
}

/// The impls of serde's sequence traits (`$item`: what adds an item) over [`Compound::element`].
macro_rules! sequence {
    ($($trait:ident $item:ident),*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $item<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                self.close(true)
            }
        })*
    };
}

sequence!(
    SerializeSeq serialize_element,
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field
);

/// The impls of serde's struct traits over [`Compound::key`] and [`Compound::value`].
macro_rules! structure {
    ($($trait:ident),*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.key(key)?;
                self.value(value)
            }

            fn end(self) -> Result<(), Error> {
                self.close(false)
            }
        })*
    };
}

structure!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close(false)
    }
}

/// A map key, as serde_json writes keys: a string, or a number or bool in quotes; nothing else.
struct MapKey<'a, 'b>(&'a mut Json<'b>);

impl MapKey<'_, '_> {
    /// A number or bool key: its JSON between quotes.
    fn quoted(self, f: impl FnOnce(&mut Line<'_>) -> io::Result<()>) -> Result<(), Error> {
        self.0.fmt(|out| {
            CompactFormatter.begin_string(out)?;
            f(out)?;
            CompactFormatter.end_string(out)
        })
    }
}

/// What serde_json answers a key that is not a string, a number or a bool.
fn not_a_key() -> Error {
    ser::Error::custom("key must be a string")
}

impl ser::Serializer for MapKey<'_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.0.string(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.0.string(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.0.string(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    scalars!(quoted);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        self.quoted(|out| CompactFormatter.write_f32(out, v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        self.quoted(|out| CompactFormatter.write_f64(out, v))
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(not_a_key())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(not_a_key())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(not_a_key())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(not_a_key())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(not_a_key())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<(), Error>, Error> {
        Err(not_a_key())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde::Serialize;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    /// Both writers' bytes for `value`.
    fn both<T: ?Sized + Serialize>(value: &T) -> (Vec<u8>, Vec<u8>) {
        let mut ours = b"kept".to_vec();
        let ours = write(&mut ours, value).map(|()| ours[4..].to_vec());
        let theirs = serde_json::to_vec(value);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                assert_eq!(a.is_ok(), b.is_ok(), "one writer failed: {a:?} / {b:?}");
                (Vec::new(), Vec::new())
            }
        }
    }

    fn same<T: ?Sized + Serialize>(value: &T) {
        let (ours, theirs) = both(value);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    /// The word test finds each byte JSON escapes at every place of a word, and nothing else.
    #[test]
    fn plain_is_the_escape_table_at_every_position() {
        for b in 0..=255u8 {
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    if let Ok(s) = std::str::from_utf8(&bytes) {
                        assert_eq!(plain(s), !escaped(b), "byte {b} at {at} of {len}");
                    }
                }
            }
        }
        for s in [
            "",
            "é",
            "☃ snow",
            "a\u{7f}b",
            "\u{10FFFF}xxxxxxxx",
            "ünïcödé-ünïcödé",
        ] {
            assert!(plain(s), "{s:?}");
        }
        assert!(!plain("ünïcödé\"ünïcödé"));
        assert!(!plain("xxxxxxxxxxxxxxx\n"));
    }

    /// Strings that need escaping and strings that do not, as values and as keys.
    #[test]
    fn strings_are_serde_json_s() {
        let strings = [
            "",
            "plain",
            "a \"quoted\" word",
            "back\\slash",
            "new\nline\ttab\r\u{8}\u{c}",
            "\u{0}\u{1f}\u{7f}",
            "ünïcödé ☃ \u{10FFFF}",
            "exactly8",
            "sixteen-bytes-xx",
            "0123456789abcdef\"",
        ];
        for s in strings {
            same(s);
            same(&json!({ s: s }));
            same(&'"');
            same(&'é');
        }
    }

    /// Every shape of serde's data model, as serde_json writes it.
    #[test]
    fn the_data_model_is_serde_json_s() {
        #[derive(Serialize)]
        struct Unit;
        #[derive(Serialize)]
        struct Newtype(u8);
        #[derive(Serialize)]
        struct Tuple(u8, &'static str);
        #[derive(Serialize)]
        enum E {
            A,
            B(i32),
            C(u8, f32),
            D { x: bool, y: Option<u8> },
            Empty {},
            EmptyTuple(),
        }
        #[derive(Serialize)]
        struct All {
            unit: (),
            unit_struct: Unit,
            newtype: Newtype,
            tuple: Tuple,
            pair: (i8, i16),
            variants: Vec<E>,
            numbers: (i32, i64, i128, u16, u32, u64, u128),
            floats: Vec<f32>,
            doubles: Vec<f64>,
            none: Option<u8>,
            some: Option<&'static str>,
            bytes: serde_bytes_like::Bytes,
            empty_seq: Vec<u8>,
            empty_map: BTreeMap<String, u8>,
            int_keys: BTreeMap<i64, u8>,
            u_keys: BTreeMap<u128, u8>,
            bool_keys: BTreeMap<bool, u8>,
            char_keys: BTreeMap<char, u8>,
            unit_keys: BTreeMap<Key, u8>,
            newtype_keys: BTreeMap<NewKey, u8>,
            float_keys: Vec<(f64, u8)>,
            ip: std::net::IpAddr,
        }
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        enum Key {
            K,
        }
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        struct NewKey(String);
        mod serde_bytes_like {
            pub struct Bytes(pub Vec<u8>);
            impl serde::Serialize for Bytes {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_bytes(&self.0)
                }
            }
        }
        let all = All {
            unit: (),
            unit_struct: Unit,
            newtype: Newtype(7),
            tuple: Tuple(1, "t\""),
            pair: (-1, -300),
            variants: vec![
                E::A,
                E::B(-5),
                E::C(2, 0.5),
                E::D { x: true, y: None },
                E::Empty {},
                E::EmptyTuple(),
            ],
            numbers: (i32::MIN, i64::MAX, i128::MIN, 65535, 7, u64::MAX, u128::MAX),
            floats: vec![
                0.0,
                -0.0,
                1.5,
                0.1349,
                1e-7,
                3.4e38,
                f32::NAN,
                f32::INFINITY,
            ],
            doubles: vec![0.1, 1e300, -2.5e-300, f64::NAN, f64::NEG_INFINITY],
            none: None,
            some: Some("s"),
            bytes: serde_bytes_like::Bytes(vec![0, 1, 255]),
            empty_seq: vec![],
            empty_map: BTreeMap::new(),
            int_keys: [(-1, 1), (2, 2)].into_iter().collect(),
            u_keys: [(u128::MAX, 1)].into_iter().collect(),
            bool_keys: [(true, 1), (false, 0)].into_iter().collect(),
            char_keys: [('"', 1), ('a', 2)].into_iter().collect(),
            unit_keys: [(Key::K, 1)].into_iter().collect(),
            newtype_keys: [(NewKey("n\\k".into()), 1)].into_iter().collect(),
            float_keys: vec![(1.5, 1)],
            ip: std::net::IpAddr::from([203, 0, 113, 7]),
        };
        same(&all);
        // Keys serde_json refuses: refused here too.
        let (a, b) = both(&[(vec![1u8], 1u8)].into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!((a, b), (Vec::new(), Vec::new()));
        let mut nan_key = serde_json::Map::new();
        nan_key.insert("x".into(), json!(1));
        struct FloatKey(f64);
        impl Serialize for FloatKey {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(&self.0, &1)?;
                m.end()
            }
        }
        for k in [1.25, f64::NAN, f64::INFINITY] {
            same(&FloatKey(k));
        }
        same(&nan_key);
    }

    /// JSON documents of every shape: claims a token may carry.
    #[test]
    fn values_are_serde_json_s() {
        let doc: Value = json!({
            "act": {"sub": "agent\"7", "act": {"sub": "bot\n"}},
            "amr": ["pwd", "otp", "ü"],
            "auth_time": 1_767_225_600u64,
            "neg": -42,
            "float": 0.30000000000000004,
            "big": 1.7976931348623157e308,
            "null": null,
            "t": true,
            "f": false,
            "nested": [[], {}, [{}], {"": ""}],
            "ctl\u{1}": "\u{1f}",
        });
        same(&doc);
        for v in doc.as_object().unwrap().values() {
            same(v);
        }
    }
}
