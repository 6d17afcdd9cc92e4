package syslog

// WalkStructuredData calls fn for every SD-PARAM of sd, an RFC 5424
// STRUCTURED-DATA as Parse stores it in event.Syslog.StructuredData, in
// order: id is the SD-ID of its element, name the PARAM-NAME and value the
// PARAM-VALUE as received, escapes included (see AppendUnescaped). An
// element without parameters gives one call with nil name and value. The
// slices alias sd. It returns false, after the calls for what came before,
// if sd is not well-formed. It does not allocate.
func WalkStructuredData(sd []byte, fn func(id, name, value []byte)) bool {
	if len(sd) == 0 {
		return true
	}
	if sd[0] != '[' {
		return false
	}
	j, ok := scanSD(sd, 0, fn)
	return ok && j == len(sd)
}

// AppendUnescaped appends PARAM-VALUE v with its escapes resolved (\" \\
// \] become " \ ]) to dst and returns the result. A backslash before any
// other character is kept, as RFC 5424 section 6.3.3 requires.
func AppendUnescaped(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '"', '\\', ']':
				i++
				c = v[i]
			}
		}
		dst = append(dst, c)
	}
	return dst
}
