//! The JSON record scanner shared by the file and HTTP sources.
//!
//! It reads NDJSON, concatenated and pretty-printed JSON values (back to back, spanning
//! lines), and a top-level array of objects (yielding its elements one at a time, so a huge
//! array streams). Bytes arrive in chunks ([`Scanner::push`]); the scanner keeps only the
//! record being parsed, so memory is bounded by `max_record`.
//!
//! What must stay true: every position reported is the absolute 1-based line and column
//! (in bytes) of the input; after a syntax error the scanner resumes at the next line, so
//! one bad NDJSON line costs exactly that line; records already returned are never lost.

use rampart_core::EventId;
use serde_json::Value;

/// One step of scanning.
#[derive(Debug)]
pub(crate) enum Scan {
    /// A JSON value (not necessarily an object: the normalizer decides that).
    Record {
        /// The value.
        value: Value,
        /// Its deterministic id (origin, byte offset, raw bytes).
        id: EventId,
        /// 1-based line of its first byte.
        line: u64,
        /// 1-based column of its first byte.
        column: u64,
    },
    /// Something that is not JSON.
    Invalid {
        /// 1-based line of the problem.
        line: u64,
        /// 1-based column of the problem.
        column: u64,
        /// What is wrong (serde_json's words, without its own position suffix).
        message: String,
    },
    /// Push more bytes (or call [`Scanner::finish`]) and scan again.
    NeedMore,
    /// The input is exhausted.
    End,
}

pub(crate) struct Scanner {
    origin: String,
    buf: Vec<u8>,
    pos: usize,
    /// Absolute byte offset of `buf[0]`.
    base: u64,
    line: u64,
    column: u64,
    eof: bool,
    in_array: bool,
    array_failed: bool,
    skip_line: bool,
    max_record: usize,
}

const CHUNK: usize = 64 * 1024;

impl Scanner {
    pub(crate) fn new(origin: impl Into<String>, max_record: usize) -> Scanner {
        Scanner {
            origin: origin.into(),
            buf: Vec::new(),
            pos: 0,
            base: 0,
            line: 1,
            column: 1,
            eof: false,
            in_array: false,
            array_failed: false,
            skip_line: false,
            max_record: max_record.max(1),
        }
    }

    /// How many bytes the next read should ask for: at least as many as are pending, so a
    /// large record is re-parsed a logarithmic number of times, not once per chunk.
    pub(crate) fn wanted(&self) -> usize {
        CHUNK.max(self.buf.len() - self.pos)
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn finish(&mut self) {
        self.eof = true;
    }

    fn advance(&mut self, n: usize) {
        let consumed = &self.buf[self.pos..self.pos + n];
        match memchr::memrchr(b'\n', consumed) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', consumed).count() as u64;
                self.column = (n - last) as u64;
            }
            None => self.column += n as u64,
        }
        self.pos += n;
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn too_large(&mut self) -> Scan {
        let (line, column) = (self.line, self.column);
        self.skip_line = true;
        Scan::Invalid { line, column, message: format!("record larger than {} bytes", self.max_record) }
    }

    pub(crate) fn next(&mut self) -> Scan {
        loop {
            if self.skip_line {
                match memchr::memchr(b'\n', &self.buf[self.pos..]) {
                    Some(i) => {
                        self.advance(i + 1);
                        self.skip_line = false;
                    }
                    None => {
                        let n = self.pending();
                        self.advance(n);
                        if !self.eof {
                            return Scan::NeedMore;
                        }
                        self.skip_line = false;
                    }
                }
            }
            let ws = self.buf[self.pos..]
                .iter()
                .position(|b| !(b.is_ascii_whitespace() || (self.in_array && *b == b',')))
                .unwrap_or(self.pending());
            self.advance(ws);
            let Some(&first) = self.buf.get(self.pos) else {
                if !self.eof {
                    return Scan::NeedMore;
                }
                if self.in_array {
                    self.in_array = false;
                    if !std::mem::take(&mut self.array_failed) {
                        return Scan::Invalid { line: self.line, column: self.column, message: "EOF while parsing a list: expected `]`".into() };
                    }
                }
                return Scan::End;
            };
            if self.in_array && first == b']' {
                self.advance(1);
                self.in_array = false;
                self.array_failed = false;
                continue;
            }
            if !self.in_array && first == b'[' {
                // An array of objects (or an empty one) is a list of events; any other
                // array is one record, which the normalizer rejects as not an object.
                match self.buf[self.pos + 1..].iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'{') | Some(b']') => {
                        self.advance(1);
                        self.in_array = true;
                        continue;
                    }
                    Some(_) => {}
                    None if !self.eof => {
                        if self.pending() > self.max_record {
                            return self.too_large();
                        }
                        return Scan::NeedMore;
                    }
                    None => {}
                }
            }
            let slice = &self.buf[self.pos..];
            let mut stream = serde_json::Deserializer::from_slice(slice).into_iter::<Value>();
            match stream.next() {
                Some(Ok(value)) => {
                    let n = stream.byte_offset();
                    // A value ending exactly at the end of the bytes so far may continue
                    // (`12` of `123`) unless the input has ended.
                    if n == slice.len() && !self.eof {
                        if self.pending() > self.max_record {
                            return self.too_large();
                        }
                        return Scan::NeedMore;
                    }
                    let id = EventId::derive(&self.origin, self.base + self.pos as u64, &slice[..n]);
                    let (line, column) = (self.line, self.column);
                    self.advance(n);
                    return Scan::Record { value, id, line, column };
                }
                Some(Err(e)) if e.is_eof() && !self.eof => {
                    if self.pending() > self.max_record {
                        return self.too_large();
                    }
                    return Scan::NeedMore;
                }
                Some(Err(e)) => {
                    let rel_line = e.line().max(1);
                    let line = self.line + rel_line as u64 - 1;
                    let column = if rel_line == 1 { self.column + e.column().max(1) as u64 - 1 } else { e.column().max(1) as u64 };
                    let message = strip_position(&e.to_string());
                    // Move to the start of the offending line; the rest of it is skipped.
                    let mut skip = 0;
                    for _ in 1..rel_line {
                        match memchr::memchr(b'\n', &self.buf[self.pos + skip..]) {
                            Some(i) => skip += i + 1,
                            None => break,
                        }
                    }
                    self.advance(skip);
                    self.skip_line = true;
                    if self.in_array {
                        self.array_failed = true;
                    }
                    return Scan::Invalid { line, column, message };
                }
                None => {
                    let n = self.pending();
                    self.advance(n);
                }
            }
        }
    }
}

/// serde_json ends its messages with ` at line L column C`; positions are reported
/// absolutely by the caller instead.
pub(crate) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Scans `input` fed in chunks of `chunk` bytes; records as `(line, column, value)`,
    /// errors as `line:column: message` strings.
    pub(crate) fn scan_all(input: &[u8], chunk: usize) -> (Vec<(u64, u64, Value)>, Vec<String>) {
        let mut s = Scanner::new("t", 1 << 20);
        let mut rest = input;
        let (mut recs, mut errs) = (Vec::new(), Vec::new());
        loop {
            match s.next() {
                Scan::Record { value, line, column, .. } => recs.push((line, column, value)),
                Scan::Invalid { line, column, message } => errs.push(format!("{line}:{column}: {message}")),
                Scan::NeedMore => {
                    if rest.is_empty() {
                        s.finish();
                    } else {
                        let n = chunk.min(rest.len());
                        s.push(&rest[..n]);
                        rest = &rest[n..];
                    }
                }
                Scan::End => return (recs, errs),
            }
        }
    }

    #[test]
    fn ndjson_concatenated_pretty_and_arrays_at_any_chunking() {
        let input = b"{\"a\":1}\n{\"b\":2}{\"c\":3}\n{\n  \"d\": {\"e\": [1, 2]}\n}\n[{\"f\":4},\n {\"g\":5}]\n[]\n{\"h\":123456}";
        for chunk in [1, 2, 3, 7, 64, 10_000] {
            let (recs, errs) = scan_all(input, chunk);
            assert!(errs.is_empty(), "chunk {chunk}: {errs:?}");
            let keys: Vec<String> = recs.iter().map(|(_, _, v)| v.as_object().unwrap().keys().next().unwrap().clone()).collect();
            assert_eq!(keys, ["a", "b", "c", "d", "f", "g", "h"], "chunk {chunk}");
            let pos: Vec<(u64, u64)> = recs.iter().map(|(l, c, _)| (*l, *c)).collect();
            assert_eq!(pos, [(1, 1), (2, 1), (2, 8), (3, 1), (6, 2), (7, 2), (9, 1)], "chunk {chunk}");
            assert_eq!(recs[6].2["h"], 123456, "a number split across chunks is not cut");
        }
    }

    #[test]
    fn a_bad_line_costs_only_that_line_and_is_located() {
        let input = b"{\"a\":1}\n{\"b\": x}\n[1,2]\n  {\"c\":3}\n";
        for chunk in [1, 5, 1000] {
            let (recs, errs) = scan_all(input, chunk);
            assert_eq!(errs, ["2:7: expected value"], "chunk {chunk}");
            // `[1,2]` is one record (an array), rejected later by the normalizer.
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[1], (3, 1, serde_json::json!([1, 2])));
            assert_eq!(recs[2].0, 4);
            assert_eq!(recs[2].1, 3);
        }
    }

    #[test]
    fn errors_inside_pretty_records_report_the_absolute_line() {
        let input = b"{\"ok\":1}\n{\n  \"a\": 1,\n  \"b\": ]\n}\n{\"z\":2}\n";
        let (recs, errs) = scan_all(input, 4);
        assert_eq!(errs[0], "4:8: expected value");
        assert_eq!(recs.first().unwrap().2["ok"], 1);
        assert_eq!(recs.last().unwrap().2["z"], 2, "reading resumes after the bad line");
    }

    #[test]
    fn truncated_input_and_unterminated_arrays_are_errors() {
        let (recs, errs) = scan_all(b"{\"a\":1}\n{\"b\":", 3);
        assert_eq!(recs.len(), 1);
        assert_eq!(errs, ["2:5: EOF while parsing a value"]);
        let (recs, errs) = scan_all(b"[{\"a\":1},{\"b\":2}", 3);
        assert_eq!(recs.len(), 2);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("expected `]`"), "{errs:?}");
    }

    #[test]
    fn oversized_records_are_rejected_and_skipped() {
        let mut s = Scanner::new("t", 16);
        s.push(b"{\"a\":\"0123456789012345678901234567890\"}\n{\"b\":1}\n");
        s.finish();
        assert!(matches!(s.next(), Scan::Record { .. }), "a complete record in the buffer is fine");
        let mut s = Scanner::new("t", 16);
        s.push(b"{\"a\":\"0123456789012345678901234567890");
        match s.next() {
            Scan::Invalid { message, .. } => assert!(message.contains("larger than 16 bytes"), "{message}"),
            other => panic!("{other:?}"),
        }
        s.push(b"\"}\n{\"b\":1}\n");
        s.finish();
        match s.next() {
            Scan::Record { value, line, .. } => {
                assert_eq!(value["b"], 1);
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.next(), Scan::End));
    }

    #[test]
    fn ids_are_deterministic_and_positional() {
        let ids = |input: &[u8]| {
            let mut s = Scanner::new("o", 1024);
            s.push(input);
            s.finish();
            let mut v = Vec::new();
            while let Scan::Record { id, .. } = s.next() {
                v.push(id);
            }
            v
        };
        let a = ids(b"{\"x\":1}\n{\"x\":1}\n");
        assert_eq!(a.len(), 2);
        assert_ne!(a[0], a[1], "same bytes at another offset is another event");
        assert_eq!(a, ids(b"{\"x\":1}\n{\"x\":1}\n"));
    }
}
