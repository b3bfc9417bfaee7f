//! The INI reader and `%(name)s` interpolation on arbitrary text: no panic, no hang (the
//! interpolation depth is bounded), CRLF read as LF.
#![no_main]
use waitressd::config::ini::Ini;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let abs = std::path::Path::new("/srv/app/production.ini");
    let parsed = Ini::parse(text, abs, "production.ini");
    if !text.contains('\r') {
        let crlf = Ini::parse(&text.replace('\n', "\r\n"), abs, "production.ini");
        assert_eq!(
            format!("{parsed:?}"),
            format!("{crlf:?}"),
            "CRLF read differently"
        );
    }
    if let Ok(ini) = parsed {
        for sec in &ini.sections {
            for (key, _) in ini.options(sec) {
                let _ = ini.get(Some(&sec.name), &key);
            }
        }
    }
});
