//! A certificate's distinguished name as RFC 4514 text, the form mod_ssl and nginx
//! (`$ssl_client_s_dn` since 1.11.6) give apps: the RDNs last-first joined by `,`, the parts of
//! a multi-valued RDN by `+`, values escaped so no part of one can pass for a separator.
use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// `name` as RFC 4514 text, e.g. `CN=alice,O=Evil\, CN=admin`. The parts of a multi-valued
/// RDN come last-first too (RFC 4514 leaves their order open): OpenSSL reverses the whole
/// list of attributes, and mod_ssl and nginx print with it.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let mut parts: Vec<String> = rdn.iter().map(attribute).collect();
            parts.reverse();
            parts.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// `TYPE=value`: RFC 4514's short names (and OpenSSL's `emailAddress`) with the value as
/// escaped text; any other type, or a value that is not a string, as `OID=#` and the hex of
/// the value's DER encoding.
fn attribute(a: &AttributeTypeAndValue<'_>) -> String {
    let oid = a.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.6" => Some("C"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        "1.2.840.113549.1.9.1" => Some("emailAddress"),
        _ => None,
    };
    match (short, text(a.attr_value())) {
        (Some(name), Some(value)) => format!("{name}={}", escape(&value)),
        _ => {
            let der = a.attr_value().to_der_vec().unwrap_or_default();
            let hex: String = der.iter().map(|b| format!("{b:02X}")).collect();
            format!("{oid}=#{hex}")
        }
    }
}

/// The value of a string type as text (T61 read as Latin-1, as OpenSSL does); None for any
/// other type or a malformed value.
fn text(v: &Any<'_>) -> Option<String> {
    let d = v.data;
    match v.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(d).ok().map(str::to_owned),
        Tag::TeletexString => Some(d.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString if d.len() % 2 == 0 => {
            let units = d.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<_, _>>().ok()
        }
        Tag::UniversalString if d.len() % 4 == 0 => d
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// RFC 4514 §2.4: `,` `+` `"` `\` `<` `>` `;` with a backslash, a leading `#` or space and a
/// trailing space too; NUL and the other control characters as `\XX` (as OpenSSL does).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => out.push('\\'),
            '#' if i == 0 => out.push('\\'),
            ' ' if i == 0 || i == last => out.push('\\'),
            c if c.is_ascii_control() => {
                out.push_str(&format!("\\{:02X}", c as u8));
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_4514_says() {
        for (raw, want) in [
            ("alice", "alice"),
            ("Evil, CN=admin", r"Evil\, CN=admin"),
            (r#"a+b"c\d<e>f;g"#, r#"a\+b\"c\\d\<e\>f\;g"#),
            ("#1 fan", r"\#1 fan"),
            ("a#b", "a#b"),
            (" padded ", r"\ padded\ "),
            (" ", r"\ "),
            ("nul\0here", r"nul\00here"),
            ("tab\there", r"tab\09here"),
            ("zoë", "zoë"),
            ("", ""),
        ] {
            assert_eq!(escape(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn bmp_and_universal_strings_are_decoded() {
        let bmp = [0x00, b'h', 0x00, 0xEB];
        let any = Any::from_tag_and_data(Tag::BmpString, &bmp);
        assert_eq!(text(&any).as_deref(), Some("hë"));
        let univ = [0, 0, 0, b'x'];
        let any = Any::from_tag_and_data(Tag::UniversalString, &univ);
        assert_eq!(text(&any).as_deref(), Some("x"));
        let odd = [0x00];
        assert_eq!(text(&Any::from_tag_and_data(Tag::BmpString, &odd)), None);
        assert_eq!(text(&Any::from_tag_and_data(Tag::Integer, &odd)), None);
    }
}
