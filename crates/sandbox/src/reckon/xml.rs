//! Just enough XML for the company file: a small element tree to read one request's content,
//! and an indenting writer for responses laid out like the SDK's.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One element with its attributes, child elements and (trimmed, unescaped) text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    /// Reads one element (e.g. a request exactly as it appears in its document).
    pub(crate) fn parse(raw: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(raw);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|err| err.to_string())?;
            match event {
                Event::Start(tag) => stack.push(start(&tag)?),
                Event::Empty(tag) => {
                    let element = start(&tag)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let done = stack.pop().ok_or("unbalanced end tag")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(text) => {
                    let text = text.unescape().map_err(|err| err.to_string())?;
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&text);
                    }
                }
                Event::CData(data) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::Eof => return Err("the element is never closed".into()),
                _ => {}
            }
        }
    }

    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, if it has any.
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }

    /// The texts of every child called `name`.
    pub(crate) fn texts_of<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.children_named(name).map(|c| c.text.trim()).filter(|t| !t.is_empty()).collect()
    }
}

fn start(tag: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr.unescape_value().map_err(|err| err.to_string())?.into_owned();
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

/// Writes elements one per line, indented by two spaces per level, as the SDK lays out its
/// responses.
#[derive(Debug, Default)]
pub(crate) struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    pub(crate) fn new(depth: usize) -> Self {
        XmlWriter { out: String::new(), depth }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
        self
    }

    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self
    }

    /// `<name>text</name>`.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_text(text, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self
    }

    /// A leaf only when there is a value.
    pub(crate) fn opt_leaf(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.leaf(name, text);
        }
        self
    }

    /// `<name><ListID>…</ListID><FullName>…</FullName></name>`.
    pub(crate) fn reference(&mut self, name: &str, list_id: &str, full_name: &str) -> &mut Self {
        self.open(name).leaf("ListID", list_id).leaf("FullName", full_name).close(name)
    }

    /// An element with leaf children, skipped when it has none.
    pub(crate) fn group(&mut self, name: &str, fields: &[(String, String)]) -> &mut Self {
        if fields.is_empty() {
            return self;
        }
        self.open(name);
        for (field, value) in fields {
            self.leaf(field, value);
        }
        self.close(name)
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

pub(crate) fn escape_text(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

pub(crate) fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_into_a_tree_with_entities_expanded() {
        let raw = r#"<CustomerAddRq requestID="a&amp;b"><CustomerAdd>
            <Name>Fish &amp; Chips Café</Name><BillAddress><City>Ōtaki</City></BillAddress><Memo/>
            <!-- a comment --></CustomerAdd></CustomerAddRq>"#;
        let rq = Element::parse(raw).unwrap();
        assert_eq!(rq.name, "CustomerAddRq");
        assert_eq!(rq.attrs, [("requestID".to_owned(), "a&b".to_owned())]);
        let add = rq.child("CustomerAdd").unwrap();
        assert_eq!(add.text_of("Name"), Some("Fish & Chips Café"));
        assert_eq!(add.child("BillAddress").unwrap().text_of("City"), Some("Ōtaki"));
        assert!(add.child("Memo").is_some());
        assert_eq!(add.text_of("Memo"), None);
    }

    #[test]
    fn an_empty_request_element_is_an_element() {
        let rq = Element::parse("<HostQueryRq requestID=\"1\"/>").unwrap();
        assert_eq!(rq.name, "HostQueryRq");
        assert!(rq.children.is_empty());
    }

    #[test]
    fn the_writer_indents_and_escapes() {
        let mut w = XmlWriter::new(1);
        w.open("CustomerRet").leaf("Name", "A & <B>").close("CustomerRet");
        assert_eq!(w.finish(), "  <CustomerRet>\n    <Name>A &amp; &lt;B&gt;</Name>\n  </CustomerRet>\n");
    }
}
