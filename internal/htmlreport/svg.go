package htmlreport

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"sync"
)

// svg builds one inline <svg> element. Attribute values and text are either
// constants of this package or pass through esc; coordinates through num.
type svg struct {
	b    strings.Builder
	w, h float64
}

// newSVG opens an accessible SVG: role="img", an aria-label, and a <title>
// and <desc> (the desc is referenced by aria-describedby, so id must be
// unique in the page).
func newSVG(w, h float64, id, title, desc string) *svg {
	s := &svg{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s" aria-describedby="%s-d">`,
		num(w), num(h), num(w), num(h), esc(title), id)
	fmt.Fprintf(&s.b, `<title>%s</title><desc id="%s-d">%s</desc>`, esc(title), id, esc(desc))
	return s
}

func (s *svg) String() string { return s.b.String() + "</svg>" }

func (s *svg) line(x1, y1, x2, y2 float64, cls string) {
	fmt.Fprintf(&s.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" class="%s"/>`, num(x1), num(y1), num(x2), num(y2), cls)
}

func (s *svg) rect(x, y, w, h float64, cls string) {
	fmt.Fprintf(&s.b, `<rect x="%s" y="%s" width="%s" height="%s" class="%s"/>`, num(x), num(y), num(w), num(h), cls)
}

// text writes an escaped text node. anchor is start, middle or end; rot
// rotates it by −90° about (x, y) when set.
func (s *svg) text(x, y float64, cls, anchor string, rot bool, t string) {
	tr := ""
	if rot {
		tr = fmt.Sprintf(` transform="rotate(-90 %s %s)"`, num(x), num(y))
	}
	fmt.Fprintf(&s.b, `<text x="%s" y="%s" class="%s" text-anchor="%s"%s>%s</text>`, num(x), num(y), cls, anchor, tr, esc(t))
}

// path writes a path from points (moveto at the first and after any NaN).
func (s *svg) path(xs, ys []float64, cls string) {
	var d strings.Builder
	pen := false
	for i := range xs {
		if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) {
			pen = false
			continue
		}
		if pen {
			d.WriteByte('L')
		} else {
			d.WriteByte('M')
		}
		d.WriteString(num(xs[i]))
		d.WriteByte(' ')
		d.WriteString(num(ys[i]))
		pen = true
	}
	if d.Len() > 0 {
		fmt.Fprintf(&s.b, `<path d="%s" class="%s"/>`, d.String(), cls)
	}
}

// rawPath writes a path with a prepared d attribute (built from numbers).
func (s *svg) rawPath(d, cls string) {
	if d != "" {
		fmt.Fprintf(&s.b, `<path d="%s" class="%s"/>`, d, cls)
	}
}

func (s *svg) image(x, y, w, h float64, uri string) {
	fmt.Fprintf(&s.b, `<image x="%s" y="%s" width="%s" height="%s" preserveAspectRatio="none" href="%s"/>`, num(x), num(y), num(w), num(h), uri)
}

// Raster palette: indices 0..nColours−1 are viridis, then one colour for
// "no value" and one fully transparent entry (masked cells).
const (
	nColours = 254
	idxNaN   = 254
	idxClear = 255
)

// nanColour is the "no value" colour: a light grey that viridis never takes.
var nanColour = color.NRGBA{0xd9, 0xd9, 0xd9, 0xff}

var rasterPalette = func() color.Palette {
	p := make(color.Palette, 256)
	for i := 0; i < nColours; i++ {
		c := viridis[int(math.Round(float64(i)*255/float64(nColours-1)))]
		p[i] = color.NRGBA{c[0], c[1], c[2], 0xff}
	}
	p[idxNaN] = nanColour
	p[idxClear] = color.NRGBA{}
	return p
}()

// colourIndex maps v in [lo, hi] onto a palette index; NaN is "no value".
func colourIndex(v, lo, hi float64) uint8 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return idxNaN
	}
	t := 0.0
	if hi > lo {
		t = (v - lo) / (hi - lo)
	}
	t = math.Max(0, math.Min(1, t))
	return uint8(math.Round(t * (nColours - 1)))
}

// hexColour is palette entry i as #rrggbb (for legends drawn in vector).
func hexColour(i uint8) string {
	c := rasterPalette[i].(color.NRGBA)
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}

// encoderPool reuses the PNG encoder's compressor state (about 1 MB each)
// across the many rasters of a page.
type encoderPool struct{}

var pngBuffers sync.Pool

func (encoderPool) Get() *png.EncoderBuffer {
	b, _ := pngBuffers.Get().(*png.EncoderBuffer)
	return b
}

func (encoderPool) Put(b *png.EncoderBuffer) { pngBuffers.Put(b) }

// rasterURI encodes a cols × rows grid of palette indices as a PNG data
// URI. Cells are drawn as pixels and scaled up by the SVG (CSS asks for
// pixelated scaling), which keeps a 1000-cell heatmap near 1 kB where one
// <rect> per cell would take 50 kB.
func rasterURI(cols, rows int, at func(c, r int) uint8) (string, error) {
	if cols <= 0 || rows <= 0 {
		return "", fmt.Errorf("empty %d×%d raster", cols, rows)
	}
	img := image.NewPaletted(image.Rect(0, 0, cols, rows), rasterPalette)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			img.Pix[r*img.Stride+c] = at(c, r)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression, BufferPool: encoderPool{}}
	if err := enc.Encode(&buf, img); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
