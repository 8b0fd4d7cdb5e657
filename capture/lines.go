package capture

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math"
)

func isFlateCorrupt(err error) bool {
	var ce flate.CorruptInputError
	return errors.As(err, &ce)
}

// lineReader splits the uncompressed stream into lines without allocating
// for lines that fit the bufio buffer; longer lines (snapshots) are
// assembled in a reused buffer up to max bytes.
type lineReader struct {
	src  *source
	max  int
	long []byte
	no   int64 // number of the line last returned
	off  int64 // uncompressed offset of the next line's start
	err  error // sticky stream error
}

// textLine is one line without its "\n" or "\r\n".
type textLine struct {
	b   []byte
	no  int64
	off int64
	// unterminated is set for a last line without "\n": it may be torn.
	unterminated bool
}

// textReader is what the readers of text formats (hftbacktest,
// cryptofeed, data.binance.vision CSV) share: the source, its lines, the
// record returned last, the counters and the error that ended the read.
type textReader struct {
	src   *source
	lr    lineReader
	rec   Record
	stats Stats
	err   error // sticky: torn tail or stream error
}

func newTextReader(src *source, maxLine int) textReader {
	return textReader{src: src, lr: lineReader{src: src, max: maxLine}}
}

func (r *textReader) Progress() (done, total int64) { return r.src.Progress() }
func (r *textReader) Stats() Stats                  { return r.stats }
func (r *textReader) Close() error                  { return r.src.Close() }

// count counts the line just read (err is what reading it returned): a
// *LineError (a line too long, say) is a line with an error that the
// reader goes on after; any other error (io.EOF, a stream error) ends the
// reader: it is kept in r.err. blank reports a line of white space only,
// which the caller skips and counts as skipped.
func (r *textReader) count(ln textLine, err error) (blank bool, _ error) {
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			r.stats.Lines++
			r.stats.Errors++
			return false, err
		}
		r.err = err
		return false, err
	}
	r.stats.Lines++
	return len(bytes.TrimSpace(ln.b)) == 0, nil
}

// bad reports a line that did not parse: an unterminated last line is a
// torn tail, which ends the reader; any other is a *LineError, counted,
// that the reader goes on after.
func (r *textReader) bad(ln textLine, err error) error {
	if ln.unterminated {
		r.err = tornLine(r.src.name, ln, err)
		return r.err
	}
	r.stats.Errors++
	return &LineError{Name: r.src.name, Line: ln.no, Offset: ln.off, Err: err}
}

// next returns the next line. io.EOF ends the stream; a line longer than
// max is reported as a *LineError and skipped; stream errors are sticky.
func (l *lineReader) next() (textLine, error) {
	if l.err != nil {
		return textLine{}, l.err
	}
	start := l.off
	l.long = l.long[:0]
	tooLong := false
	for {
		frag, err := l.src.br.ReadSlice('\n')
		l.off += int64(len(frag))
		switch {
		case err == nil:
			l.no++
			if tooLong || len(l.long)+len(frag)-1 > l.max {
				return textLine{}, &LineError{Name: l.src.name, Line: l.no, Offset: start,
					Err: fmt.Errorf("line longer than %d bytes (raise OpenOptions.MaxLineSize)", l.max)}
			}
			b := frag
			if len(l.long) > 0 {
				l.long = append(l.long, frag...)
				b = l.long
			}
			b = b[:len(b)-1]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return textLine{b: b, no: l.no, off: start}, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(l.long)+len(frag) > l.max {
				tooLong = true
				l.long = l.long[:0]
			}
			if !tooLong {
				l.long = append(l.long, frag...)
			}
		case errors.Is(err, io.EOF):
			if len(frag) == 0 && len(l.long) == 0 && !tooLong {
				l.err = io.EOF
				return textLine{}, io.EOF
			}
			l.no++
			l.err = io.EOF
			if tooLong || len(l.long)+len(frag) > l.max {
				return textLine{}, &LineError{Name: l.src.name, Line: l.no, Offset: start,
					Err: fmt.Errorf("line longer than %d bytes (raise OpenOptions.MaxLineSize)", l.max)}
			}
			b := frag
			if len(l.long) > 0 {
				l.long = append(l.long, frag...)
				b = l.long
			}
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return textLine{b: b, no: l.no, off: start, unterminated: true}, nil
		default:
			l.err = l.src.readErr(err, l.off)
			return textLine{}, l.err
		}
	}
}

// tornLine reports an unterminated last line that does not parse: the
// recorder stopped in the middle of writing it.
func tornLine(name string, ln textLine, why error) error {
	return fmt.Errorf("capture: %s: %w: last line %d at offset %d is incomplete: %w", name, ErrTorn, ln.no, ln.off, why)
}

// interner maps symbol bytes to shared strings so that setting
// Record.Symbol does not allocate once a symbol has been seen.
type interner struct {
	m       map[string]string
	scratch [32]byte
}

const maxInterned = 4096 // bounds memory on a hostile file with endless symbols

// upper returns b upper-cased as an interned string. b must be a symbol of
// ASCII letters and digits; ok is false otherwise.
func (in *interner) upper(b []byte) (s string, ok bool) {
	if len(b) == 0 || len(b) > len(in.scratch) {
		return "", false
	}
	u := in.scratch[:len(b)]
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return "", false
		}
		u[i] = c
	}
	if s, ok := in.m[string(u)]; ok {
		return s, true
	}
	s = string(u)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s, true
}

var (
	errNotNumber = errors.New("not an unsigned integer")
	errRange     = errors.New("integer out of range")
)

// parseUint reads an unsigned decimal integer that fits int64.
func parseUint(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errNotNumber
	}
	var v uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, errNotNumber
		}
		if v > (math.MaxInt64-uint64(d))/10 {
			return 0, errRange
		}
		v = v*10 + uint64(d)
	}
	return int64(v), nil
}

// parseSecondsNs converts "1617647603.4249449" (Unix seconds with a decimal
// fraction) to Unix nanoseconds exactly, from the digits: no float rounding.
// Digits beyond the ninth fractional one are dropped (truncation).
func parseSecondsNs(b []byte) (int64, error) {
	dot := -1
	for i, c := range b {
		if c == '.' {
			dot = i
			break
		}
	}
	intPart, frac := b, []byte(nil)
	if dot >= 0 {
		intPart, frac = b[:dot], b[dot+1:]
		if len(frac) == 0 {
			return 0, errors.New("empty fraction after '.'")
		}
	}
	sec, err := parseUint(intPart)
	if err != nil {
		return 0, fmt.Errorf("seconds %q: %w", b, err)
	}
	if sec > math.MaxInt64/1_000_000_000-1 {
		return 0, fmt.Errorf("seconds %q: %w", b, errRange)
	}
	var ns int64
	for i, c := range frac {
		d := c - '0'
		if d > 9 {
			return 0, fmt.Errorf("seconds %q: %w", b, errNotNumber)
		}
		if i < 9 {
			ns = ns*10 + int64(d)
		}
	}
	for i := len(frac); i < 9; i++ {
		ns *= 10
	}
	return sec*1e9 + ns, nil
}
