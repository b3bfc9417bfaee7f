//! Seeds for the coverage-guided fuzz targets (`tools/fuzz.sh` runs this ignored test once):
//! the hostile request corpus and the config corpus, in each target's input layout.
use std::path::Path;

fn write(dir: &Path, target: &str, name: usize, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(format!("seed-{name:04}")), bytes).unwrap();
}

#[test]
#[ignore = "run by tools/fuzz.sh with WAITRESSD_FUZZ_SEEDS=DIR"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("WAITRESSD_FUZZ_SEEDS") else {
        return;
    };
    let dir = Path::new(&dir);
    let groups = [
        crate::hostile::corpus::SMUGGLING,
        crate::hostile::corpus::CHUNKED,
        crate::hostile::corpus::REQUEST_LINE_AND_HOST,
        crate::hostile::corpus::LINES_AND_BYTES,
        crate::hostile::corpus::VALID,
        crate::hostile::corpus::LIMITS,
    ];
    let mut n = 0;
    for c in groups.iter().flat_map(|g| g.iter()) {
        let raw = crate::hostile::fill(c.raw, "/p");
        if raw.len() > 16384 {
            continue;
        }
        // Layout of the stream targets: a first byte for the number of cut points (none).
        let framed = [&[0u8][..], &raw].concat();
        write(dir, "parser", n, &framed);
        write(dir, "channel", n, &framed);
        write(dir, "differential", n, &raw);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            write(dir, "chunked", n, &[&[0u8][..], &raw[p + 4..]].concat());
        }
        n += 1;
    }
    let configs = crate::util::root().join("tests/config_corpus");
    for (i, e) in std::fs::read_dir(configs).unwrap().enumerate() {
        let text = std::fs::read(e.unwrap().path()).unwrap();
        write(dir, "ini", i, &text);
        for (j, line) in String::from_utf8_lossy(&text).lines().enumerate() {
            if let Some(v) = line.strip_prefix("listen").and_then(|l| l.split_once('=')) {
                write(dir, "listen", i * 100 + j, v.1.trim().as_bytes());
            }
        }
    }
    for (i, l) in [
        "127.0.0.1:8080",
        "[::1]:80",
        "*:http",
        "0.0.0.0:0 [::]:443",
        "[v6]",
    ]
    .iter()
    .enumerate()
    {
        write(dir, "listen", 90000 + i, l.as_bytes());
    } // PROXY headers as HAProxy sends them (v1 lines, v2 with addresses and a TLV), each
      // followed by a request.
    let v4 = [[127, 0, 0, 1], [10, 0, 0, 2]].concat();
    let v6 = [[0u8; 15].as_slice(), &[1], &[0; 15], &[2]].concat();
    let tlv = [0x01, 0x00, 0x02, b'h', b'2'];
    for (i, h) in [
        b"PROXY TCP4 203.0.113.9 10.0.0.2 51000 8080\r\n".to_vec(),
        b"PROXY TCP6 2001:db8::9 ::1 51000 443\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        super::proxy::v2(
            0x21,
            0x11,
            16,
            &[&v4[..], &[0xc7, 0x38, 0x1f, 0x90], &tlv].concat(),
        ),
        super::proxy::v2(
            0x21,
            0x21,
            36,
            &[&v6[..], &[0xc7, 0x38, 0x01, 0xbb]].concat(),
        ),
        super::proxy::v2(0x20, 0x00, 0, &[]),
    ]
    .iter()
    .enumerate()
    {
        write(
            dir,
            "proxy",
            i,
            &[&h[..], b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"].concat(),
        );
    }
}
