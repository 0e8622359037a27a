package hasher

// cstr is a name followed by a NUL byte, ready for a syscall. The names a
// steady tick uses (the root, `..data`, the directory it names, every entry
// of a listing) are made once and kept, so an unchanged tick allocates
// nothing.
type cstr string

// makeCstr returns s with a NUL byte appended.
func makeCstr(s string) cstr { return cstr(s + "\x00") }

// String returns the name without its NUL.
func (c cstr) String() string {
	if c == "" {
		return ""
	}
	return string(c[:len(c)-1])
}

const dataLinkC cstr = "..data\x00"

// interner keeps one cstr per name seen in the listings of a root, so that
// listing an unchanged directory allocates nothing. It forgets names that
// are gone once it holds more than twice what the last scans used.
type interner struct {
	names map[string]cstr
	used  int
}

// intern returns the cstr of name; name is usually a view of a reused
// buffer, and the map lookup by string(name) does not copy it.
func (in *interner) intern(name []byte) cstr {
	if c, ok := in.names[string(name)]; ok {
		in.used++
		return c
	}
	if in.names == nil {
		in.names = make(map[string]cstr)
	}
	c := makeCstr(string(name))
	in.names[c.String()] = c
	in.used++
	return c
}

// endScan drops the table when it has grown well past what a scan uses.
func (in *interner) endScan() {
	if len(in.names) > 2*in.used+64 {
		clear(in.names)
	}
	in.used = 0
}
