package capture

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/orderflow/orderflow/market"
)

// The capture format (".ofcap"), written by Writer:
//
//	file header  8-byte magic "\x89OFCAP\r\n", uint32 LE version (1)
//	block*       20-byte header, then payload
//
//	block header "OFB\x01", uint32 LE payload length, uint32 LE raw
//	             (uncompressed) length, uint32 LE record count, uint32 LE
//	             CRC-32C of header bytes 4..16 followed by the payload
//	payload      raw DEFLATE (compress/flate) of count records:
//	             kind byte (0 frame, 1 depth snapshot, 2 REST aggTrades,
//	             3 book reset),
//	             varint local ns, uvarint symbol length, symbol,
//	             market byte (0 unknown, 1 spot, 2 USD-M), uvarint data
//	             length, data
//
// Each block is an independent DEFLATE stream, written with one write call
// and only appended, so a crash can only tear the last block; the checksum
// covers the lengths as well as the payload, so a torn or corrupt block is
// never mistaken for data. A file header may appear again at a block
// boundary (files concatenated with cat); readers skip it. Appending a new
// session to an existing file simply continues with blocks.
var (
	fileMagic  = [8]byte{0x89, 'O', 'F', 'C', 'A', 'P', '\r', '\n'}
	blockMagic = [4]byte{'O', 'F', 'B', 0x01}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

const (
	formatVersion   = 1
	fileHeaderSize  = 12
	blockHeaderSize = 20
	// maxBlockRaw bounds a block (and so a record) uncompressed; the payload
	// bound leaves room for incompressible data. They keep a corrupt length
	// from making a reader allocate gigabytes.
	maxBlockRaw     = 64 << 20
	maxBlockPayload = maxBlockRaw + maxBlockRaw/64 + 1024
	minRecordSize   = 5 // kind, local, symbol length, market, data length
)

// blockHeader is a decoded block header.
type blockHeader struct {
	payload, raw, count, crc uint32
}

// parseBlockHeader checks a 20-byte block header; it does not check the CRC.
func parseBlockHeader(h []byte) (blockHeader, error) {
	if !bytes.Equal(h[:4], blockMagic[:]) {
		return blockHeader{}, fmt.Errorf("bad block magic %q", h[:4])
	}
	bh := blockHeader{
		payload: binary.LittleEndian.Uint32(h[4:]),
		raw:     binary.LittleEndian.Uint32(h[8:]),
		count:   binary.LittleEndian.Uint32(h[12:]),
		crc:     binary.LittleEndian.Uint32(h[16:]),
	}
	switch {
	case bh.payload == 0 || bh.payload > maxBlockPayload:
		return bh, fmt.Errorf("payload length %d out of range", bh.payload)
	case bh.raw > maxBlockRaw:
		return bh, fmt.Errorf("raw length %d out of range", bh.raw)
	case bh.count == 0 || uint64(bh.count)*minRecordSize > uint64(bh.raw):
		return bh, fmt.Errorf("record count %d does not fit raw length %d", bh.count, bh.raw)
	}
	return bh, nil
}

// blockCRC is the checksum stored in a block header.
func blockCRC(h []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[4:16])
	return crc32.Update(c, castagnoli, payload)
}

// checkFileHeader checks the 12-byte file header.
func checkFileHeader(h []byte) error {
	if !bytes.Equal(h[:8], fileMagic[:]) {
		return errors.New("not a capture file (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != formatVersion {
		return fmt.Errorf("capture format version %d, this build reads %d", v, formatVersion)
	}
	return nil
}

// blockReader reads the capture format.
type blockReader struct {
	src   *source
	rec   Record
	stats Stats
	in    interner
	err   error

	off      int64 // offset in the (uncompressed) stream
	started  bool
	hdr      [blockHeaderSize]byte
	comp     []byte
	raw      []byte
	pos      int
	left     uint32
	blockOff int64
	cr       bytes.Reader
	fr       io.ReadCloser
}

func newBlockReader(src *source) *blockReader { return &blockReader{src: src} }

func (r *blockReader) Progress() (done, total int64) { return r.src.Progress() }
func (r *blockReader) Stats() Stats                  { return r.stats }
func (r *blockReader) Close() error                  { return r.src.Close() }

// torn builds the sticky error for a torn or corrupt tail.
func (r *blockReader) torn(off int64, format string, args ...any) error {
	r.err = fmt.Errorf("capture: %s: %w at offset %d: %s", r.src.name, ErrTorn, off, fmt.Sprintf(format, args...))
	return r.err
}

// readFull reads len(p) bytes; n is what it got.
func (r *blockReader) readFull(p []byte) (int, error) {
	n, err := io.ReadFull(r.src.br, p)
	r.off += int64(n)
	return n, err
}

// Next implements Reader.
func (r *blockReader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	for r.left == 0 {
		if err := r.nextBlock(); err != nil {
			return nil, err
		}
	}
	at := r.pos
	fail := func(what string) (*Record, error) {
		return nil, r.torn(r.blockOff, "block record at raw offset %d: %s", at, what)
	}
	b := r.raw[r.pos:]
	if len(b) < minRecordSize {
		return fail("truncated record")
	}
	kind := RecordKind(b[0])
	if kind > lastKind {
		return fail(fmt.Sprintf("unknown record kind %d", kind))
	}
	local, n := binary.Varint(b[1:])
	if n <= 0 {
		return fail("bad local time varint")
	}
	b = b[1+n:]
	symLen, n := binary.Uvarint(b)
	if n <= 0 || symLen >= uint64(len(b)-n) {
		return fail("bad symbol length")
	}
	sym := b[n : n+int(symLen)]
	b = b[n+int(symLen):]
	mb := b[0]
	if mb > 1+byte(market.USDM) {
		return fail(fmt.Sprintf("unknown market byte %d", mb))
	}
	b = b[1:]
	dataLen, n := binary.Uvarint(b)
	if n <= 0 || dataLen > uint64(len(b)-n) {
		return fail("bad data length")
	}
	data := b[n : n+int(dataLen)]
	b = b[n+int(dataLen):]
	r.pos = len(r.raw) - len(b)
	r.left--

	r.rec = Record{Kind: kind, Local: local, Data: data}
	if len(sym) > 0 {
		r.rec.Symbol = r.in.exact(sym)
	}
	if mb != 0 {
		r.rec.Market, r.rec.MarketKnown = market.Kind(mb-1), true
	}
	r.stats.Records++
	return &r.rec, nil
}

// nextBlock reads, checks and inflates the next block.
func (r *blockReader) nextBlock() error {
	if r.pos != len(r.raw) {
		return r.torn(r.blockOff, "block has %d bytes after its last record", len(r.raw)-r.pos)
	}
	if !r.started {
		r.started = true
		var h [fileHeaderSize]byte
		n, err := r.readFull(h[:])
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			r.err = io.EOF
			return r.err
		case err != nil && (errors.Is(err, io.ErrUnexpectedEOF)):
			if bytes.HasPrefix(fileMagic[:], h[:min(n, 8)]) {
				return r.torn(0, "file header cut after %d bytes", n)
			}
			r.err = fmt.Errorf("capture: %s: not a capture file (bad magic)", r.src.name)
			return r.err
		case err != nil:
			r.err = r.src.readErr(err, r.off)
			return r.err
		}
		if err := checkFileHeader(h[:]); err != nil {
			r.err = fmt.Errorf("capture: %s: %w", r.src.name, err)
			return r.err
		}
	}
	for {
		r.blockOff = r.off
		n, err := r.readFull(r.hdr[:4])
		if n == 0 && errors.Is(err, io.EOF) {
			r.err = io.EOF
			return r.err
		}
		if err != nil {
			return r.tornRead(err, "block header cut after %d bytes", n)
		}
		if bytes.Equal(r.hdr[:4], fileMagic[:4]) { // another file appended with cat
			var rest [fileHeaderSize]byte
			copy(rest[:], r.hdr[:4])
			if m, err := r.readFull(rest[4:]); err != nil {
				return r.tornRead(err, "file header cut after %d bytes", 4+m)
			}
			if err := checkFileHeader(rest[:]); err != nil {
				return r.torn(r.blockOff, "%v", err)
			}
			continue
		}
		break
	}
	if m, err := r.readFull(r.hdr[4:]); err != nil {
		return r.tornRead(err, "block header cut after %d bytes", 4+m)
	}
	bh, err := parseBlockHeader(r.hdr[:])
	if err != nil {
		return r.torn(r.blockOff, "corrupt block header: %v", err)
	}
	r.comp = grow(r.comp, int(bh.payload))
	if m, err := r.readFull(r.comp); err != nil {
		return r.tornRead(err, "block payload cut: %d of %d bytes", m, bh.payload)
	}
	if got := blockCRC(r.hdr[:], r.comp); got != bh.crc {
		return r.torn(r.blockOff, "block checksum mismatch (stored %08x, computed %08x)", bh.crc, got)
	}
	r.raw = grow(r.raw, int(bh.raw))
	r.cr.Reset(r.comp)
	if r.fr == nil {
		r.fr = flate.NewReader(&r.cr)
	} else if err := r.fr.(flate.Resetter).Reset(&r.cr, nil); err != nil {
		return r.torn(r.blockOff, "inflate: %v", err)
	}
	if _, err := io.ReadFull(r.fr, r.raw); err != nil {
		return r.torn(r.blockOff, "inflate: %v", err)
	}
	var one [1]byte
	if n, err := r.fr.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
		return r.torn(r.blockOff, "inflate: payload longer than raw length %d", bh.raw)
	}
	r.pos, r.left = 0, bh.count
	r.stats.Blocks++
	return nil
}

// tornRead reports a short read: the end of the stream inside a block is a
// torn tail; any other error is the stream's.
func (r *blockReader) tornRead(err error, format string, args ...any) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return r.torn(r.blockOff, format, args...)
	}
	r.err = r.src.readErr(err, r.off)
	return r.err
}

// grow returns b resized to n, reusing its storage. It over-allocates a
// quarter so that blocks of slightly varying size do not reallocate.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n, n+n/4)
}

// exact returns b as an interned string (symbols as written).
func (in *interner) exact(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}
