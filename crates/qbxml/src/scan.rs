//! The thin layer over quick-xml that both parsers share: absolute byte offsets, errors with
//! positions, and attribute spans that the rewriter can splice at.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{ParseError, ParseErrorKind};

/// Where one attribute sits in the document, so it can be replaced or removed in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrSpan {
    /// From the whitespace before the name to the closing quote, inclusive: what a removal
    /// deletes.
    pub(crate) whole: Range<usize>,
    /// The value between the quotes, still escaped: what a replacement overwrites.
    pub(crate) value: Range<usize>,
}

/// One attribute of a start tag, borrowed from the document.
pub(crate) struct RawAttr<'a> {
    pub(crate) key: &'a str,
    /// The value as written (entities not expanded).
    pub(crate) raw_value: &'a str,
    pub(crate) span: AttrSpan,
}

impl<'a> RawAttr<'a> {
    /// The value with entities expanded; borrows unless the value contains `&`.
    pub(crate) fn value(&self, scanner: &Scanner<'a>, element: &str) -> Result<Cow<'a, str>, ParseError> {
        quick_xml::escape::unescape(self.raw_value).map_err(|err| {
            scanner.error_at(
                self.span.value.start,
                ParseErrorKind::InvalidAttribute {
                    element: element.to_owned(),
                    message: format!("{}: {err}", self.key),
                },
            )
        })
    }
}

/// A quick-xml reader over a whole `&str` that reports offsets into that string.
pub(crate) struct Scanner<'a> {
    xml: &'a str,
    /// Bytes skipped before the reader's input (a UTF-8 byte order mark).
    base: usize,
    reader: Reader<&'a [u8]>,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(xml: &'a str) -> Self {
        // Windows tools like to prepend a BOM; quick-xml without the `encoding` feature would
        // treat it as text before the root.
        let base = if xml.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
        Scanner { xml, base, reader: Reader::from_str(&xml[base..]) }
    }

    pub(crate) fn xml(&self) -> &'a str {
        self.xml
    }

    /// Offset of the first byte of the document proper (after any BOM).
    pub(crate) fn start(&self) -> usize {
        self.base
    }

    /// Offset just after the last event read.
    pub(crate) fn position(&self) -> usize {
        self.base + usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    /// The next event and the offset where it starts.
    pub(crate) fn next(&mut self) -> Result<(usize, Event<'a>), ParseError> {
        let start = self.position();
        Ok((start, self.next_event()?))
    }

    /// The next event, for hot loops that do not need its offset.
    #[inline]
    pub(crate) fn next_event(&mut self) -> Result<Event<'a>, ParseError> {
        self.reader.read_event().map_err(|err| self.reader_error(err))
    }

    #[cold]
    fn reader_error(&self, err: quick_xml::Error) -> ParseError {
        let at = self.base + usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
        self.error_at(at, ParseErrorKind::Xml(err.to_string()))
    }

    /// An error about markup just read that starts with `opening`, located at its start. Only
    /// for cold paths: hot loops do not track where each event starts.
    #[cold]
    pub(crate) fn error_at_last(&self, opening: &str, kind: ParseErrorKind) -> ParseError {
        let end = self.position().min(self.xml.len());
        let start = self.xml.get(..end).and_then(|before| before.rfind(opening));
        self.error_at(start.unwrap_or(end), kind)
    }

    pub(crate) fn error_at(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.xml, offset, kind)
    }

    fn offset_of(&self, part: &[u8]) -> usize {
        offset_in(self.xml, part)
    }

    fn text_of(&self, part: &[u8]) -> &'a str {
        text_in(self.xml, part)
    }

    /// The element name of a start or empty tag, borrowed from the document.
    pub(crate) fn name(&self, tag: &BytesStart<'a>) -> &'a str {
        self.text_of(tag.name().as_ref())
    }

    /// Calls `each` for every attribute of `tag` (which starts at `tag_start`), in order.
    pub(crate) fn for_each_attr(
        &self,
        tag: &BytesStart<'a>,
        tag_start: usize,
        element: &str,
        mut each: impl FnMut(RawAttr<'a>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        for attr in tag.attributes() {
            let attr = attr.map_err(|err| {
                self.error_at(
                    tag_start,
                    ParseErrorKind::InvalidAttribute {
                        element: element.to_owned(),
                        message: err.to_string(),
                    },
                )
            })?;
            let key_start = self.offset_of(attr.key.as_ref());
            let value_start = self.offset_of(&attr.value);
            let value_end = value_start + attr.value.len();
            let whole_start = key_start
                - self.xml.as_bytes()[..key_start].iter().rev().take_while(|b| is_xml_space(**b)).count();
            let whole_end = (value_end + 1).min(self.xml.len());
            each(RawAttr {
                key: self.text_of(attr.key.as_ref()),
                raw_value: self.text_of(&attr.value),
                span: AttrSpan { whole: whole_start..whole_end, value: value_start..value_end },
            })?;
        }
        Ok(())
    }

    /// Checks every attribute of `tag` for syntax and entity errors.
    pub(crate) fn check_attrs(
        &self,
        tag: &BytesStart<'a>,
        tag_start: usize,
        element: &str,
    ) -> Result<(), ParseError> {
        self.for_each_attr(tag, tag_start, element, |attr| attr.value(self, element).map(drop))
    }

    /// Checks a text node for entity errors.
    pub(crate) fn check_text(&self, text: &[u8], text_start: usize, element: &str) -> Result<(), ParseError> {
        if !text.contains(&b'&') {
            return Ok(());
        }
        quick_xml::escape::unescape(self.text_of(text)).map(drop).map_err(|err| {
            self.error_at(
                text_start,
                ParseErrorKind::InvalidText { element: element.to_owned(), message: err.to_string() },
            )
        })
    }

    /// Reads up to and including the end tag matching an already-read start tag, checking
    /// attributes and text on the way when `strict`. Returns the offset after the end tag.
    pub(crate) fn skip_element(
        &mut self,
        name: &'a str,
        tag_start: usize,
        strict: bool,
    ) -> Result<usize, ParseError> {
        let mut depth = 1usize;
        loop {
            let (at, event) = self.next()?;
            match event {
                Event::Start(tag) => {
                    depth += 1;
                    if strict {
                        self.check_attrs(&tag, at, self.name(&tag))?;
                    }
                }
                Event::Empty(tag) if strict => self.check_attrs(&tag, at, self.name(&tag))?,
                Event::Text(text) if strict => self.check_text(&text, at, name)?,
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(self.position());
                    }
                }
                Event::DocType(_) => {
                    return Err(self.error_at(at, ParseErrorKind::DoctypeNotAllowed));
                }
                Event::Decl(_) => {
                    return Err(self.error_at(at, ParseErrorKind::MisplacedDeclaration));
                }
                Event::Eof => {
                    return Err(self.error_at(tag_start, ParseErrorKind::Unclosed(name.to_owned())));
                }
                _ => {}
            }
        }
    }

    /// After the root element closed: only whitespace, comments and processing instructions
    /// may follow.
    pub(crate) fn expect_end_of_document(&mut self) -> Result<(), ParseError> {
        loop {
            let (at, event) = self.next()?;
            match event {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                _ => return Err(self.error_at(at, ParseErrorKind::ContentAfterRoot)),
            }
        }
    }
}

/// Offset of a slice that a quick-xml reader over `outer` borrowed from it.
pub(crate) fn offset_in(outer: &str, part: &[u8]) -> usize {
    // Events from `Reader::from_str` borrow the input, so the slice lies inside `outer`;
    // clamp anyway so a surprise can only produce a wrong span, never a panic.
    let start = outer.as_ptr() as usize;
    (part.as_ptr() as usize).saturating_sub(start).min(outer.len())
}

/// The text of `outer` that `part` was borrowed from, with `outer`'s lifetime.
pub(crate) fn text_in<'a>(outer: &'a str, part: &[u8]) -> &'a str {
    let start = offset_in(outer, part);
    outer.get(start..start + part.len()).unwrap_or("")
}

pub(crate) fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn is_blank(text: &[u8]) -> bool {
    text.iter().all(|&b| is_xml_space(b))
}

/// Escapes a value for use inside a double- or single-quoted attribute.
pub(crate) fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
}
