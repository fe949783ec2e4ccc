package attachfilter

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// MaxDepth bounds how deep Scan goes into nested multiparts and messages; a
// message nested deeper is refused as unreadable rather than let through unseen.
const MaxDepth = 32

// ErrTooDeep is Scan's error for a message nested beyond MaxDepth.
var ErrTooDeep = errors.New("attachfilter: MIME parts nested too deep")

// Part is one leaf part of a message as Scan saw it.
type Part struct {
	// Path is the part's place in the tree: "1.2" is the second part of the first
	// part; a message/rfc822 part's own parts go on below it.
	Path string
	// Name is the attachment's file name ("" for none), from Content-Disposition's
	// filename or Content-Type's name, RFC 2231 and RFC 2047 encodings undone.
	Name string
	// Type is the part's media type, lower case ("text/plain" when it has none).
	Type string
	// body and cte are the part's body as sent and its transfer encoding.
	body []byte
	cte  string
}

// Content is the part's body with its transfer encoding undone, or as sent when
// that encoding does not decode.
func (p Part) Content() []byte {
	if b, err := decode(p.cte, p.body); err == nil {
		return b
	}
	return p.body
}

// Scan lists the leaf parts of msg, a whole message (header and body).
func Scan(msg []byte) ([]Part, error) {
	var out []Part
	_, err := rewrite(msg, func(p Part) bool { out = append(out, p); return false }, nil, nil)
	return out, err
}

// Remove is msg without the leaf parts drop says to remove, with a text part saying
// text(removed) at the end of the message's own multipart (the whole message, when it
// was itself the part removed), and the parts removed; msg as it is and none when
// nothing is. Only the parts on the way to a removed one are written anew. The
// Attachment Filtering agent strips with it, and the antivirus agent removes
// infected parts.
func Remove(msg []byte, drop func(Part) bool, text func(removed []Part) string) ([]byte, []Part, error) {
	r, err := rewrite(msg, drop, func(removed []Part) []byte {
		return []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n" + text(removed) + "\r\n")
	}, text)
	return r.data, r.removed, err
}

// rewrite is msg without the parts drop says to remove, with notice's part added
// to the message's own multipart (text's alone, when the message itself was
// removed); msg as it is when nothing is removed.
func rewrite(msg []byte, drop func(Part) bool, notice func([]Part) []byte, text func([]Part) string) (rewritten, error) {
	h, body, err := split(msg)
	if err != nil {
		return rewritten{}, err
	}
	w := walker{drop: drop, notice: notice}
	out, err := w.entity(h, body, "", 0)
	if err != nil {
		return rewritten{}, err
	}
	if len(w.removed) == 0 {
		return rewritten{data: msg}, nil
	}
	if out == nil {
		// The message itself was the blocked attachment: the notice is all of it.
		h.Del("Content-Disposition")
		h.Del("Content-Transfer-Encoding")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if text == nil {
			text = noticeText
		}
		out = []byte(text(w.removed) + "\r\n")
		return rewritten{data: join(h, out), removed: w.removed}, nil
	}
	return rewritten{data: join(h, out), removed: w.removed}, nil
}

type rewritten struct {
	data    []byte
	removed []Part
}

type walker struct {
	drop func(Part) bool
	// notice is the part that says what was removed, added at the end of the
	// message's own multipart (Strip); nil for none.
	notice  func([]Part) []byte
	removed []Part
}

// split reads a header and returns it with the raw body after it.
func split(b []byte) (textproto.Header, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return textproto.Header{}, nil, fmt.Errorf("attachfilter: header: %w", err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		return textproto.Header{}, nil, fmt.Errorf("attachfilter: body: %w", err)
	}
	return h, rest, nil
}

func join(h textproto.Header, body []byte) []byte {
	var b bytes.Buffer
	_ = textproto.WriteHeader(&b, h)
	b.Write(body)
	return b.Bytes()
}

// mediaType is h's media type and parameters; a field that does not parse is
// text/plain, as RFC 2045 §5.2 has it.
func mediaType(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", nil
	}
	t, params, err := mime.ParseMediaType(v)
	if err != nil && t == "" {
		return "text/plain", nil
	}
	return strings.ToLower(t), params
}

var words = mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

// fileName is the part's attachment name, "" for none.
func fileName(h textproto.Header, ctParams map[string]string) string {
	name := ""
	if v := h.Get("Content-Disposition"); v != "" {
		if _, params, err := mime.ParseMediaType(v); err == nil || params != nil {
			name = params["filename"]
		}
	}
	if name == "" {
		name = ctParams["name"]
	}
	if d, err := words.DecodeHeader(name); err == nil {
		name = d
	}
	return strings.TrimSpace(name)
}

// entity walks one entity (header h, raw body) at path, and returns its body
// rewritten (unchanged bytes when nothing under it was removed).
func (w *walker) entity(h textproto.Header, body []byte, path string, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	t, params := mediaType(h)
	switch {
	case strings.HasPrefix(t, "multipart/") && params["boundary"] != "":
		return w.multipart(body, params["boundary"], path, depth)
	case t == "message/rfc822" || t == "message/global":
		p := Part{Path: path, Name: fileName(h, params), Type: t, body: body,
			cte: strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))}
		if p.Name != "" && w.drop(p) {
			// A message attached under a blocked name is the attachment itself.
			w.removed = append(w.removed, p)
			return nil, nil
		}
		return w.message(h, body, path, depth)
	}
	p := Part{Path: path, Name: fileName(h, params), Type: t, body: body,
		cte: strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))}
	if path == "" {
		p.Path = "1"
	}
	if w.drop(p) {
		w.removed = append(w.removed, p)
		return nil, nil
	}
	return body, nil
}

func sub(path string, i int) string {
	if path == "" {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// multipart walks each body part; a removed one leaves the body without it.
func (w *walker) multipart(body []byte, boundary, path string, depth int) ([]byte, error) {
	mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
	type part struct {
		h    textproto.Header
		body []byte
		gone bool
	}
	var parts []part
	changed := false
	for i := 1; ; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("attachfilter: part %s: %w", sub(path, i), err)
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("attachfilter: part %s: %w", sub(path, i), err)
		}
		before := len(w.removed)
		nb, err := w.entity(p.Header, raw, sub(path, i), depth+1)
		if err != nil {
			return nil, err
		}
		gone := nb == nil && len(w.removed) > before && w.removed[len(w.removed)-1].Path == sub(path, i)
		if len(w.removed) > before {
			changed = true
		}
		parts = append(parts, part{h: p.Header, body: nb, gone: gone})
	}
	if !changed {
		return body, nil
	}
	var b bytes.Buffer
	for _, p := range parts {
		if p.gone {
			continue
		}
		fmt.Fprintf(&b, "--%s\r\n", boundary)
		_ = textproto.WriteHeader(&b, p.h)
		b.Write(p.body)
		b.WriteString("\r\n")
	}
	if w.notice != nil && depth == 0 {
		fmt.Fprintf(&b, "--%s\r\n", boundary)
		b.Write(w.notice(w.removed))
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

// message walks an attached message, its transfer encoding undone, and encodes it
// again when something in it was removed.
func (w *walker) message(h textproto.Header, body []byte, path string, depth int) ([]byte, error) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	inner, err := decode(cte, body)
	if err != nil {
		// Unreadable: seen as an opaque part, as a mail client would show it.
		return body, nil
	}
	ih, ibody, err := split(inner)
	if err != nil {
		return body, nil
	}
	before := len(w.removed)
	nb, err := w.entity(ih, ibody, path, depth+1)
	if err != nil {
		return nil, err
	}
	if len(w.removed) == before {
		return body, nil
	}
	if nb == nil {
		// The attached message is itself one blocked leaf: it goes whole.
		return nil, nil
	}
	return encode(cte, join(ih, nb)), nil
}

func decode(cte string, body []byte) ([]byte, error) {
	switch cte {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		return base64.RawStdEncoding.DecodeString(strings.TrimRight(string(clean), "="))
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	}
	return body, nil
}

func encode(cte string, b []byte) []byte {
	switch cte {
	case "base64":
		s := base64.StdEncoding.EncodeToString(b)
		var out bytes.Buffer
		for len(s) > 76 {
			out.WriteString(s[:76] + "\r\n")
			s = s[76:]
		}
		out.WriteString(s + "\r\n")
		return out.Bytes()
	case "quoted-printable":
		var out bytes.Buffer
		qw := quotedprintable.NewWriter(&out)
		_, _ = qw.Write(b)
		_ = qw.Close()
		return out.Bytes()
	}
	return b
}
