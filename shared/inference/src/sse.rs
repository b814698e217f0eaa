//! An incremental reader of server-sent events: bytes in as they arrive from a provider,
//! whole events out. Follows the WHATWG rules the providers' streams rely on: lines end in
//! LF, CRLF or CR; `data:` lines of one event join with LF; a blank line ends the event;
//! lines starting with `:` are comments (keep-alives); one space after the colon is
//! dropped.

/// One event: its `event:` name (if any) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Longest line kept while waiting for its end: a provider that never sends a newline
/// cannot make the gateway buffer without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event stream line exceeded {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    /// The previous byte was a CR, so an LF right after it ends nothing more.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, &mut out);
                    self.line = line;
                    self.line.clear();
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE_BYTES {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    /// The event left unterminated when the stream ended, if any (some servers omit the
    /// final blank line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
        }
        self.line_done(b"", &mut out);
        out.pop()
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], chunk: usize) -> Vec<SseEvent> {
        let mut r = SseReader::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            out.extend(r.feed(piece).unwrap());
        }
        out.extend(r.finish());
        out
    }

    #[test]
    fn events_are_the_same_however_the_bytes_are_split() {
        let input = b"event: message_start\ndata: {\"a\":1}\n\n: keep-alive\r\n\r\ndata: line one\r\ndata:line two\r\n\r\nevent: ping\rdata: {}\r\rdata: [DONE]\n\ndata: tail";
        let expected = vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: None,
                data: "line one\nline two".into(),
            },
            SseEvent {
                event: Some("ping".into()),
                data: "{}".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
            SseEvent {
                event: None,
                data: "tail".into(),
            },
        ];
        for chunk in [1, 2, 3, 7, 64, input.len()] {
            assert_eq!(all(input, chunk), expected, "split every {chunk} bytes");
        }
    }

    #[test]
    fn an_event_name_without_data_is_not_an_event_and_does_not_leak_into_the_next() {
        let got = all(b"event: orphan\n\ndata: x\n\n", 5);
        assert_eq!(
            got,
            vec![SseEvent {
                event: None,
                data: "x".into()
            }]
        );
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let mut r = SseReader::new();
        let big = vec![b'a'; MAX_LINE_BYTES];
        assert!(r.feed(b"data: ").is_ok());
        assert_eq!(r.feed(&big), Err(LineTooLong));
    }
}
