package binance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors a DecodeError wraps (besides the fixed package's parse
// errors for prices and quantities). They are fixed values so that errors.Is
// works; the details (what type was expected, which character was found) are
// in the wrapping message.
var (
	// ErrUnexpectedEOF: the input ended inside a value.
	ErrUnexpectedEOF = errors.New("binance: unexpected end of input")
	// ErrSyntax: the input is not well-formed JSON.
	ErrSyntax = errors.New("binance: invalid JSON")
	// ErrType: a field holds a JSON value of the wrong type.
	ErrType = errors.New("binance: wrong JSON type")
	// ErrRange: an integer does not fit in int64.
	ErrRange = errors.New("binance: integer out of range")
	// ErrMissingField: a field the frame's kind requires is absent.
	ErrMissingField = errors.New("binance: missing field")
	// ErrUnknownFrame: a well-formed object that is neither an event (no
	// "e"), a bookTicker, a reply nor an error.
	ErrUnknownFrame = errors.New("binance: unrecognized frame")
	// ErrTooDeep: nesting deeper than the scanner accepts (hostile input).
	ErrTooDeep = errors.New("binance: nesting too deep")
)

// DecodeError is the error every decoder of this package returns for
// malformed input. It names the frame kind (when known), the field path
// (`"b"[3][0]`, `"error"."code"`, `[12]."p"`) and the byte offset in the
// input where the offending value starts.
type DecodeError struct {
	Kind   string // "aggTrade", "depthUpdate", "depthSnapshot", ... or "" if not yet known
	Field  string // JSON path of the field, "" for a structural error
	Offset int    // byte offset in the input
	Err    error  // ErrSyntax, ErrType, fixed.ErrSyntax, ...
}

// Error reads like `decode depthUpdate: field "b"[3][0]: invalid digit at offset 17`.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("decode")
	if e.Kind != "" {
		b.WriteByte(' ')
		b.WriteString(e.Kind)
	}
	b.WriteString(": ")
	msg := "error"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	// The package prefixes of the sentinels are noise once "decode" leads.
	for _, p := range [...]string{"binance: ", "fixed: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	if errors.Is(e.Err, ErrMissingField) {
		b.WriteString(msg)
		b.WriteByte(' ')
		b.WriteString(e.Field)
		b.WriteString(" in object at offset ")
		b.WriteString(strconv.Itoa(e.Offset))
		return b.String()
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	b.WriteString(" at offset ")
	b.WriteString(strconv.Itoa(e.Offset))
	return b.String()
}

// Unwrap returns the underlying sentinel.
func (e *DecodeError) Unwrap() error { return e.Err }

// APIError is an error body Binance returns from REST ({"code":-1121,
// "msg":"Invalid symbol."}). The codes are listed in the "Error Codes"
// section of the spot and USD-M documentation.
type APIError struct {
	Code int64
	Msg  string
}

// Error reads like "binance: API error -1121: Invalid symbol.".
func (e *APIError) Error() string {
	return fmt.Sprintf("binance: API error %d: %s", e.Code, e.Msg)
}

// errAt builds a DecodeError at offset off. Only error paths call it.
func errAt(off int, err error) *DecodeError { return &DecodeError{Offset: off, Err: err} }

// typeErr reports a value of the wrong JSON type.
func typeErr(off int, want string, got byte) *DecodeError {
	return errAt(off, fmt.Errorf("%w: want %s, got %s", ErrType, want, typeName(got)))
}

// typeName names the JSON type of a value from its first byte.
func typeName(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '.':
		return "non-integer number" // a fraction or exponent where an integer belongs
	}
	return "number"
}

// withField fills in the field path of err if it is a DecodeError without
// one, prefixing an inner path with prefix. It is only called on error paths.
func withField(err error, field string) error {
	var de *DecodeError
	if errors.As(err, &de) {
		switch {
		case de.Field == "":
			de.Field = field
		case field != "" && !errors.Is(de.Err, ErrMissingField):
			if strings.HasPrefix(de.Field, "[") {
				de.Field = field + de.Field
			} else {
				de.Field = field + "." + de.Field
			}
		}
	}
	return err
}

// withKind sets the kind of a DecodeError.
func withKind(err error, kind string) error {
	var de *DecodeError
	if errors.As(err, &de) && de.Kind == "" {
		de.Kind = kind
	}
	return err
}

// quoteKey renders a key for a field path: "b" -> `"b"`.
func quoteKey(k []byte) string { return strconv.Quote(string(k)) }
