package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxLine bounds one SSE line, so a broken server cannot make the client buffer without end.
const maxLine = 4 << 20

// lineReader splits an SSE body into lines ending in \n, \r\n or \r.
type lineReader struct {
	br *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{br: bufio.NewReaderSize(r, 16<<10)} }

var errLineTooLong = errors.New("sse line too long")

func (l *lineReader) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := l.br.ReadSlice('\n')
		line = append(line, b...)
		if len(line) > maxLine {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		break
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}
