//! TCP framing (RFC 6587): octet counting and non-transparent framing, frame by frame.

use std::ops::Range;

/// Splits a TCP byte stream into frames, octet-counted or newline-delimited, in at most
/// `max` bytes of message plus one read of buffer.
#[derive(Debug)]
pub(super) struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    skip: Skip,
}

#[derive(Debug, PartialEq)]
enum Skip {
    Nothing,
    /// The rest of an octet-counted frame that was too long.
    Bytes(u64),
    /// The rest of a line that was too long.
    Line,
}

/// What the framer found.
#[derive(Debug, PartialEq)]
pub(super) enum Framed {
    /// A frame: [`Framer::bytes`] gives its bytes until the next `push`.
    Frame(Range<usize>),
    /// Longer than `max` (its length, when the framing tells it); skipped.
    TooLong { len: Option<u64> },
    /// The stream ended inside an octet-counted frame.
    Truncated { want: u64, got: usize },
}

/// More digits than this cannot be an octet count (and the frame is read as a line).
const MAX_COUNT_DIGITS: usize = 10;

fn is_separator(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'\0')
}

impl Framer {
    pub(super) fn new(max: usize) -> Framer {
        Framer { buf: Vec::new(), start: 0, max, skip: Skip::Nothing }
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(data);
    }

    pub(super) fn bytes(&self, r: Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }

    /// An octet count at `start`: `Some(Some((digits, len)))` for `LEN SP`, `Some(None)`
    /// when only digits have arrived so far, `None` when this is not one.
    fn octet_count(&self) -> Option<Option<(usize, u64)>> {
        let rest = &self.buf[self.start..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > MAX_COUNT_DIGITS {
            return None;
        }
        match rest.get(digits) {
            None => Some(None),
            Some(b' ') => {
                let len = rest[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                Some(Some((digits, len)))
            }
            Some(_) => None,
        }
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub(super) fn next_frame(&mut self) -> Option<Framed> {
        loop {
            match self.skip {
                Skip::Bytes(n) => {
                    let k = n.min((self.buf.len() - self.start) as u64);
                    self.start += k as usize;
                    if k < n {
                        self.skip = Skip::Bytes(n - k);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                }
                Skip::Line => match memchr::memchr2(b'\n', b'\0', &self.buf[self.start..]) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip = Skip::Nothing;
                    }
                    None => {
                        self.start = self.buf.len();
                        return None;
                    }
                },
                Skip::Nothing => {}
            }
            while self.buf.get(self.start).is_some_and(|b| is_separator(*b)) {
                self.start += 1;
            }
            if self.start == self.buf.len() {
                return None;
            }
            match self.octet_count() {
                Some(None) => return None,
                Some(Some((digits, len))) => {
                    let body = self.start + digits + 1;
                    if len > self.max as u64 {
                        self.start = body;
                        self.skip = Skip::Bytes(len);
                        return Some(Framed::TooLong { len: Some(len) });
                    }
                    let end = body + len as usize;
                    if end > self.buf.len() {
                        return None;
                    }
                    self.start = end;
                    if len == 0 {
                        continue;
                    }
                    return Some(Framed::Frame(body..end));
                }
                None => {}
            }
            let begin = self.start;
            let Some(i) = memchr::memchr2(b'\n', b'\0', &self.buf[begin..]) else {
                if self.buf.len() - begin > self.max {
                    self.start = self.buf.len();
                    self.skip = Skip::Line;
                    return Some(Framed::TooLong { len: None });
                }
                return None;
            };
            self.start = begin + i + 1;
            let end = if i > 0 && self.buf[begin + i - 1] == b'\r' { begin + i - 1 } else { begin + i };
            if end - begin > self.max {
                return Some(Framed::TooLong { len: Some((end - begin) as u64) });
            }
            return Some(Framed::Frame(begin..end));
        }
    }

    /// At the end of the stream (after [`Framer::next_frame`] returned `None`): the last
    /// line even without a newline, or the octet-counted frame it cut off.
    pub(super) fn finish(&mut self) -> Option<Framed> {
        if self.skip != Skip::Nothing {
            return None;
        }
        let begin = self.start;
        self.start = self.buf.len();
        if begin == self.buf.len() {
            return None;
        }
        let rest = &self.buf[begin..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=MAX_COUNT_DIGITS).contains(&digits) && rest.get(digits) == Some(&b' ') {
            let want = rest[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(Framed::Truncated { want, got: rest.len() - digits - 1 });
        }
        let end = if rest.last() == Some(&b'\r') { self.buf.len() - 1 } else { self.buf.len() };
        Some(Framed::Frame(begin..end))
    }
}
