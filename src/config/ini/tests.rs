//! Tables for the INI reader: values, delimiters and headers, read errors by line, line ends,
//! `abspath`.
use super::*;

fn parse(text: &str) -> Result<Ini, ReadError> {
    Ini::parse(text, Path::new("/srv/app/production.ini"), "production.ini")
}

fn get(ini: &Ini, s: &str, k: &str) -> String {
    ini.get(Some(s), k).unwrap().unwrap()
}

#[test]
fn values_follow_configparser() {
    let ini = parse(
        "[s]\na = 1\nb: two words\nc = foo ; bar # baz\nd =\n  line1\n\n  line2\n\ne = x\n# comment\n  y\nKey = Case\n  [x] = 1\n",
    )
    .unwrap();
    let cases = [
        ("a", "1"),
        ("b", "two words"),
        ("c", "foo ; bar # baz"),
        ("d", "\nline1\n\nline2"),
        ("e", "x\ny"),
        ("Key", "Case\n[x] = 1"),
    ];
    for (k, v) in cases {
        assert_eq!(get(&ini, "s", k), v, "{k}");
    }
    assert!(
        ini.get(Some("s"), "key").unwrap().is_none(),
        "keys are case-sensitive"
    );
}

#[test]
fn first_delimiter_splits_and_section_header_is_permissive() {
    let ini = parse("[a]b]\nurl: http://x = y\nk=v:w\n").unwrap();
    assert_eq!(ini.sections[0].name, "a]b");
    assert_eq!(get(&ini, "a]b", "url"), "http://x = y");
    assert_eq!(get(&ini, "a]b", "k"), "v:w");
}

#[test]
fn read_errors_name_the_line() {
    let cases: &[(&str, &str, usize)] = &[
        ("key = 1\n", "MissingSectionHeaderError", 1),
        ("[a]\n[a]\n", "DuplicateSectionError", 2),
        ("[a]\nx = 1\ny = 2\nx = 3\n", "DuplicateOptionError", 4),
        (
            "[DEFAULT]\nx = 1\n[DEFAULT]\nx = 2\n",
            "DuplicateOptionError",
            4,
        ),
        ("[a]\nx = 1\njunk\n", "ParsingError", 3),
        ("[a]\n= 1\n", "ParsingError", 2),
        ("[a]\njunk\n[a]\n", "DuplicateSectionError", 3),
    ];
    for (text, kind, line) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!((e.kind(), e.line()), (*kind, *line), "{text:?}");
    }
}

#[test]
fn repeated_default_section_is_allowed() {
    let ini = parse("[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n[s]\n").unwrap();
    assert_eq!(get(&ini, "s", "b"), "2");
}

#[test]
fn crlf_and_cr_line_ends() {
    let ini = parse("[s]\r\na = 1\rb = 2\r\n").unwrap();
    assert_eq!(get(&ini, "s", "b"), "2");
}

#[test]
fn abspath_is_lexical() {
    assert_eq!(
        abspath(Path::new("/a/./b/../c.ini")),
        PathBuf::from("/a/c.ini")
    );
    assert_eq!(abspath(Path::new("//a/b")), PathBuf::from("//a/b"));
    assert_eq!(abspath(Path::new("///a")), PathBuf::from("/a"));
}

#[test]
fn a_byte_order_mark_is_rejected_as_configparser_does_and_named() {
    let e = parse("\u{feff}[app:main]\nuse = egg:x\n").unwrap_err();
    assert_eq!((e.kind(), e.line()), ("MissingSectionHeaderError", 1));
    let msg = e.to_string();
    assert!(
        msg.contains("byte-order mark") && msg.contains("without BOM"),
        "{msg}"
    );
}
