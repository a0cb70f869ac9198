//! Reading a source file as the compiler would see its paths: comments and string literals
//! blanked, test modules left out.

/// The text with comments, string and char literals replaced by spaces (newlines kept, so
/// line numbers stay true).
pub fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, piece: &[u8]| {
        for &b in piece {
            out.push(if b == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        let end = if rest.starts_with(b"//") {
            rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            block_comment_len(rest)
        } else if let Some(len) = raw_string_len(rest) {
            len
        } else if rest[0] == b'"' {
            quoted_len(rest, b'"')
        } else if rest[0] == b'\'' && is_char_literal(rest) {
            quoted_len(rest, b'\'')
        } else {
            let ch = text[i..].chars().next().expect("inside the text");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        };
        blank(&mut out, &rest[..end]);
        i += end;
    }
    out
}

/// Block comments nest in Rust.
fn block_comment_len(rest: &[u8]) -> usize {
    let (mut depth, mut i) = (0, 0);
    while i < rest.len() {
        if rest[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if rest[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    rest.len()
}

/// `r"…"`, `r#"…"#`, `br#"…"#`.
fn raw_string_len(rest: &[u8]) -> Option<usize> {
    let start = if rest.starts_with(b"br") {
        2
    } else if rest.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = rest[start..].iter().take_while(|&&b| b == b'#').count();
    if rest.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    let found = rest[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + found + close.len())
}

/// A quoted literal with backslash escapes, up to and including its closing quote.
fn quoted_len(rest: &[u8], quote: u8) -> usize {
    let mut i = 1;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    rest.len()
}

/// `'a'` or `'\n'`, not a lifetime `'a`.
fn is_char_literal(rest: &[u8]) -> bool {
    match rest.get(1) {
        Some(b'\\') => true,
        Some(_) => {
            let ch_len = std::str::from_utf8(&rest[1..rest.len().min(5)])
                .ok()
                .or_else(|| std::str::from_utf8(&rest[1..2]).ok())
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            rest.get(1 + ch_len) == Some(&b'\'')
        }
        None => false,
    }
}

/// Cuts the trailing `#[cfg(test)] mod …` block: test code may reach for anything.
pub fn without_test_module(code: &str) -> &str {
    let mut offset = 0;
    let mut lines = code.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{')
            })
        {
            return &code[..offset];
        }
        offset += line.len();
    }
    code
}

/// The top-level modules a piece of code names through `crate::` (multi-line `use` groups
/// included), each with its 1-based line.
pub fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(at) = code[search..].find("crate::") {
        let start = search + at;
        search = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `$crate::` or `my_crate::`
        }
        let line = code[..start].matches('\n').count() + 1;
        let rest = code[search..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..closing_brace(group)];
            for name in top_level_names(group) {
                found.push((line, name));
            }
        } else {
            found.push((line, identifier(rest)));
        }
    }
    found
}

fn closing_brace(group: &str) -> usize {
    let mut depth = 1;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    group.len()
}

/// The first segment of each comma-separated item of a `{…}` group.
fn top_level_names(group: &str) -> Vec<String> {
    let (mut names, mut depth, mut item_start) = (Vec::new(), 0, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && depth == 0 && !c.is_whitespace() => {
                names.push(identifier(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    names
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}
