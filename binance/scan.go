package binance

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/orderflow/orderflow/fixed"
	"github.com/orderflow/orderflow/market"
)

// maxDepth bounds the nesting of values the scanner skips, so a hostile
// frame of a million '[' cannot grow the stack without bound. Binance's
// deepest structure (a depth level inside its list) is 3 levels down.
const maxDepth = 64

// scanner walks one JSON text. Offsets are absolute in b, so errors point at
// the byte in the frame. It never allocates on success.
type scanner struct {
	b []byte
	i int
}

// ws skips JSON whitespace. Binance frames have none, so the first test
// usually returns at once.
func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it; ok is false at
// the end of input.
func (s *scanner) peek() (byte, bool) {
	s.ws()
	if s.i >= len(s.b) {
		return 0, false
	}
	return s.b[s.i], true
}

// eof is the error for input that ends too early.
func (s *scanner) eof() error { return errAt(len(s.b), ErrUnexpectedEOF) }

// expect consumes byte c after optional whitespace.
func (s *scanner) expect(c byte, what string) error {
	got, ok := s.peek()
	if !ok {
		return s.eof()
	}
	if got != c {
		return errAt(s.i, fmt.Errorf("%w: found %q, want %s", ErrSyntax, got, what))
	}
	s.i++
	return nil
}

// next consumes the separator after a member or element: it returns
// more=true after a ',' and more=false after close.
func (s *scanner) next(close byte) (more bool, err error) {
	c, ok := s.peek()
	if !ok {
		return false, s.eof()
	}
	switch c {
	case ',':
		s.i++
		return true, nil
	case close:
		s.i++
		return false, nil
	}
	return false, errAt(s.i, fmt.Errorf("%w: found %q, want ',' or %q", ErrSyntax, c, close))
}

// open consumes the opening '{' or '[' of a container and reports whether
// it is empty (in which case the closing byte is consumed too).
func (s *scanner) open(c, close byte, what string) (empty bool, err error) {
	if err := s.expect(c, what); err != nil {
		return false, err
	}
	got, ok := s.peek()
	if !ok {
		return false, s.eof()
	}
	if got == close {
		s.i++
		return true, nil
	}
	return false, nil
}

// key reads an object key and the ':' after it. The returned bytes are the
// raw key (escapes not decoded; esc tells).
//
// Binance's keys are nearly all one letter followed directly by ':', which
// is recognised with one bounds check and three comparisons.
func (s *scanner) key() (k []byte, esc bool, err error) {
	if i := s.i; i+4 <= len(s.b) && s.b[i] == '"' && s.b[i+2] == '"' && s.b[i+3] == ':' {
		if c := s.b[i+1]; c >= 0x20 && c != '\\' && c != '"' {
			s.i = i + 4
			return s.b[i+1 : i+2], false, nil
		}
	}
	c, ok := s.peek()
	if !ok {
		return nil, false, s.eof()
	}
	if c != '"' {
		return nil, false, errAt(s.i, fmt.Errorf("%w: found %q, want an object key", ErrSyntax, c))
	}
	start, end, esc, err := s.str()
	if err != nil {
		return nil, false, err
	}
	if err := s.expect(':', "':' after object key"); err != nil {
		return nil, false, err
	}
	return s.b[start:end], esc, nil
}

// str consumes a string at s.i (which holds '"') and returns its content
// span and whether it holds escapes. It validates escapes and rejects raw
// control characters, as JSON requires.
//
// Eight bytes are tested at a time for the three bytes that end the plain
// run (a quote, a backslash, a control character); the byte-wise switch
// below only sees those, and the tail shorter than a word.
func (s *scanner) str() (start, end int, esc bool, err error) {
	b := s.b
	i := s.i + 1
	start = i
	for i < len(b) {
		for i+8 <= len(b) {
			m := special8(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, s.eof()
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, 0, false, s.eof()
				}
				for _, h := range b[i+2 : i+6] {
					if hexVal(h) < 0 {
						return 0, 0, false, errAt(i, fmt.Errorf("%w: bad \\u escape in string", ErrSyntax))
					}
				}
				i += 6
			default:
				return 0, 0, false, errAt(i, fmt.Errorf("%w: bad escape \\%c in string", ErrSyntax, b[i+1]))
			}
		case c < 0x20:
			return 0, 0, false, errAt(i, fmt.Errorf("%w: control character %#02x in string", ErrSyntax, c))
		default:
			i++
		}
	}
	return 0, 0, false, s.eof()
}

// special8 flags (0x80 in the byte) the bytes of x that are '"', '\\' or
// below 0x20. The lowest flagged byte is exact (the borrow that causes the
// classic zero-byte test's false positives only runs upward from a true
// hit), which is all str needs.
func special8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (x-ones*0x20)&^x) & highs
}

// num consumes a JSON number and returns its span; intOnly reports whether
// it has neither fraction nor exponent.
func (s *scanner) num() (start, end int, intOnly bool, err error) {
	b := s.b
	i := s.i
	start = i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, 0, false, s.eof()
	case b[i] == '0':
		i++
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			return 0, 0, false, errAt(start, fmt.Errorf("%w: leading zero in number", ErrSyntax))
		}
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false, errAt(i, fmt.Errorf("%w: invalid character %q in number", ErrSyntax, b[i]))
	}
	intOnly = true
	if i < len(b) && b[i] == '.' {
		intOnly = false
		if i, err = s.digits(i+1, "after '.' in number"); err != nil {
			return 0, 0, false, err
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		intOnly = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, err = s.digits(i, "in exponent"); err != nil {
			return 0, 0, false, err
		}
	}
	s.i = i
	return start, i, intOnly, nil
}

// digits skips the digits from b[i] (a fraction's or an exponent's), of
// which there must be one at least: none is a syntax error naming where
// they were wanted.
func (s *scanner) digits(i int, where string) (int, error) {
	d := i
	for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
		i++
	}
	if i == d {
		if i >= len(s.b) {
			return i, s.eof()
		}
		return i, errAt(i, fmt.Errorf("%w: no digits %s", ErrSyntax, where))
	}
	return i, nil
}

// lit consumes the literal word (true, false, null).
func (s *scanner) lit(word string) error {
	if len(s.b)-s.i < len(word) {
		if string(s.b[s.i:]) == word[:len(s.b)-s.i] {
			return s.eof()
		}
	} else if string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return nil
	}
	return errAt(s.i, fmt.Errorf("%w: invalid literal, want %s", ErrSyntax, word))
}

// skip consumes any JSON value, validating it. depth counts the containers
// already open around it.
func (s *scanner) skip(depth int) error {
	c, ok := s.peek()
	if !ok {
		return s.eof()
	}
	switch c {
	case '"':
		_, _, _, err := s.str()
		return err
	case '{':
		if depth >= maxDepth {
			return errAt(s.i, ErrTooDeep)
		}
		empty, err := s.open('{', '}', "'{'")
		if err != nil || empty {
			return err
		}
		for {
			if _, _, err := s.key(); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			more, err := s.next('}')
			if err != nil || !more {
				return err
			}
		}
	case '[':
		if depth >= maxDepth {
			return errAt(s.i, ErrTooDeep)
		}
		empty, err := s.open('[', ']', "'['")
		if err != nil || empty {
			return err
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			more, err := s.next(']')
			if err != nil || !more {
				return err
			}
		}
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	if c == '-' || (c >= '0' && c <= '9') {
		_, _, _, err := s.num()
		return err
	}
	return errAt(s.i, fmt.Errorf("%w: invalid character %q looking for a value", ErrSyntax, c))
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	if c, ok := s.peek(); ok {
		return errAt(s.i, fmt.Errorf("%w: data after the top-level value (%q)", ErrSyntax, c))
	}
	return nil
}

// val is the recorded span of one scalar or container value.
type val struct {
	off        int  // offset of the value's first byte (the quote of a string)
	start, end int  // content: string without quotes, number, or whole container
	typ        byte // first byte of the value: '"', '-' (any number), '.' (non-integer number), '{', '[', 't', 'f', 'n'
	esc        bool // string holds escapes
}

// value scans any value at s.i and records it.
func (s *scanner) value(v *val) error {
	c, ok := s.peek()
	if !ok {
		return s.eof()
	}
	v.off = s.i
	v.esc = false
	switch {
	case c == '"':
		start, end, esc, err := s.str()
		if err != nil {
			return err
		}
		v.typ, v.start, v.end, v.esc = '"', start, end, esc
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		start, end, intOnly, err := s.num()
		if err != nil {
			return err
		}
		v.typ, v.start, v.end = '-', start, end
		if !intOnly {
			v.typ = '.'
		}
		return nil
	}
	start := s.i
	if err := s.skip(1); err != nil {
		return err
	}
	v.typ, v.start, v.end = c, start, s.i
	return nil
}

// parseInt reads an integer span already validated by num.
func parseInt(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	var u uint64
	for _, c := range b {
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, ErrRange
		}
		u = u*10 + d
	}
	if neg {
		if u > 1<<63 {
			return 0, ErrRange
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, ErrRange
	}
	return int64(u), nil
}

// hexVal is the value of a hex digit, or -1.
func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape appends the decoded content of a validated string span to dst.
// Lone surrogates become U+FFFD, as in encoding/json.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(s[i+2:]))); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// text is the input a val's offsets point into.
type text []byte

// str returns the decoded content of string value v: a sub-slice of the
// input when it has no escapes, else decoded into *scratch.
func (b text) str(v *val, scratch *[]byte) []byte {
	if !v.esc {
		return b[v.start:v.end]
	}
	*scratch = unescape((*scratch)[:0], b[v.start:v.end])
	return *scratch
}

// int reads v as an int64.
func (b text) int(v *val) (int64, error) {
	if v.typ != '-' {
		return 0, typeErr(v.off, "integer", v.typ)
	}
	n, err := parseInt(b[v.start:v.end])
	if err != nil {
		return 0, errAt(v.off, err)
	}
	return n, nil
}

// dec reads v, a JSON string, as a fixed.Dec.
func (b text) dec(v *val, scratch *[]byte) (fixed.Dec, error) {
	if v.typ != '"' {
		return 0, typeErr(v.off, "decimal string", v.typ)
	}
	d, err := fixed.Parse(b.str(v, scratch))
	if err != nil {
		return 0, errAt(v.off, err)
	}
	return d, nil
}

// raw returns the verbatim JSON of a recorded value.
func (b text) raw(v *val) []byte {
	if v.typ == '"' {
		return b[v.off : v.end+1]
	}
	return b[v.off:v.end]
}

// boolVal reads v as a bool.
func boolVal(v *val) (bool, error) {
	switch v.typ {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return false, typeErr(v.off, "bool", v.typ)
}

// plainEnd returns the index of the quote closing a string whose content
// starts at i, when the content has no escape and no control character.
func plainEnd(b []byte, i int) (int, bool) {
	for ; i+8 <= len(b); i += 8 {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			return i, b[i] == '"'
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' {
			return i, true
		} else if c == '\\' || c < 0x20 {
			return i, false
		}
	}
	return i, false
}

// level reads one level written exactly as Binance writes it,
// ["price","qty"] with no spaces, plain strings and valid decimals. On
// anything else it consumes nothing and reports false, and levels takes the
// general path, which finds and reports the error (so both paths accept the
// same input and give the same errors).
func (s *scanner) level() (market.Level, bool) {
	b, i := s.b, s.i
	if i+2 > len(b) || b[i+1] != '"' {
		return market.Level{}, false
	}
	pe, ok := plainEnd(b, i+2)
	if !ok || pe+3 > len(b) || b[pe+1] != ',' || b[pe+2] != '"' {
		return market.Level{}, false
	}
	qe, ok := plainEnd(b, pe+3)
	if !ok || qe+1 >= len(b) || b[qe+1] != ']' {
		return market.Level{}, false
	}
	price, err := fixed.Parse(b[i+2 : pe])
	if err != nil {
		return market.Level{}, false
	}
	qty, err := fixed.Parse(b[pe+3 : qe])
	if err != nil {
		return market.Level{}, false
	}
	s.i = qe + 2
	return market.Level{Price: price, Qty: qty}, true
}

// levels parses a depth side, [["price","qty"], ...], appending to dst.
// Extra elements after the quantity (the long-gone third "[]" of old spot
// levels) are skipped. Errors carry the path `[i][j]`; the caller prefixes
// the key.
func (s *scanner) levels(dst []market.Level, scratch *[]byte) ([]market.Level, error) {
	c, ok := s.peek()
	if !ok {
		return dst, s.eof()
	}
	if c != '[' {
		return dst, typeErr(s.i, "array of [price, qty]", c)
	}
	s.i++
	if c, ok = s.peek(); !ok {
		return dst, s.eof()
	} else if c == ']' {
		s.i++
		return dst, nil
	}
	var v val
	for n := 0; ; n++ {
		c, ok := s.peek()
		if !ok {
			return dst, s.eof()
		}
		if c != '[' {
			return dst, withField(typeErr(s.i, "[price, qty]", c), fmt.Sprintf("[%d]", n))
		}
		open := s.i
		if lv, ok := s.level(); ok {
			dst = append(dst, lv)
			more, err := s.next(']')
			if err != nil || !more {
				return dst, err
			}
			continue
		}
		s.i++
		var lv market.Level
		for j := 0; ; j++ {
			if j < 2 {
				if err := s.value(&v); err != nil {
					return dst, withField(err, fmt.Sprintf("[%d][%d]", n, j))
				}
				d, err := text(s.b).dec(&v, scratch)
				if err != nil {
					return dst, withField(err, fmt.Sprintf("[%d][%d]", n, j))
				}
				if j == 0 {
					lv.Price = d
				} else {
					lv.Qty = d
				}
			} else if err := s.skip(3); err != nil {
				return dst, withField(err, fmt.Sprintf("[%d][%d]", n, j))
			}
			more, err := s.next(']')
			if err != nil {
				return dst, withField(err, fmt.Sprintf("[%d]", n))
			}
			if !more {
				if j < 1 {
					return dst, withField(errAt(open, fmt.Errorf("%w: level has %d element, want [price, qty]", ErrType, j+1)), fmt.Sprintf("[%d]", n))
				}
				break
			}
		}
		dst = append(dst, lv)
		more, err := s.next(']')
		if err != nil || !more {
			return dst, err
		}
	}
}
