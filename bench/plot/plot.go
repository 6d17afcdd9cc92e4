// Package plot draws the benchmark harness's line charts as PNG files with
// nothing but the standard library: one line per tool, logarithmic axes,
// a tiny built-in bitmap font, and optional dashed reference lines (such
// as the 0.1% loss threshold). It favours legibility in a terminal image
// viewer or a Markdown page over typography.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"sort"
	"strconv"
)

// Point is one measurement.
type Point struct{ X, Y float64 }

// Series is one line.
type Series struct {
	Name   string
	Points []Point
}

// Axis describes one axis. Both axes are logarithmic.
type Axis struct {
	Label string
	// Min and Max bound the axis; 0 takes them from the data. Values
	// below Min are drawn on the Min edge (so a loss of 0 shows).
	Min, Max float64
	// Ticks are the values labelled; nil labels the data's X values (x
	// axis) or the powers of ten (y axis).
	Ticks []float64
	// Percent labels values with a "%".
	Percent bool
}

// Chart is one figure.
type Chart struct {
	Title  string
	X, Y   Axis
	Series []Series
	// RefY draws a dashed Red horizontal line at each value.
	RefY []float64
}

// Geometry.
const (
	width, height = 800, 500
	left, right   = 80, 20
	top, bottom   = 40, 60
)

var (
	white = color.RGBA{255, 255, 255, 255}
	grey  = color.RGBA{200, 200, 200, 255}
)

// Colors of a chart, exported so tests can find what was drawn: Black for
// axes and text, Red for reference lines, and Palette for the series, in
// order (repeating after the last).
var (
	Black   = color.RGBA{0, 0, 0, 255}
	Red     = color.RGBA{200, 30, 30, 255}
	Palette = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}}
)

// Write draws c into a PNG file at path.
func Write(path string, c Chart) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, Draw(c)); err != nil {
		f.Close()
		return fmt.Errorf("cannot encode plot %s: %w", path, err)
	}
	return f.Close()
}

// bounds returns the log10 range of an axis.
func bounds(a Axis, vals []float64) (lo, hi float64) {
	mn, mx := a.Min, a.Max
	if mn <= 0 || mx <= 0 {
		dmn, dmx := math.Inf(1), math.Inf(-1)
		for _, v := range vals {
			if v > 0 {
				dmn, dmx = math.Min(dmn, v), math.Max(dmx, v)
			}
		}
		if math.IsInf(dmn, 1) {
			dmn, dmx = 1, 10
		}
		if mn <= 0 {
			mn = dmn
		}
		if mx <= 0 {
			mx = dmx
		}
	}
	lo, hi = math.Log10(mn), math.Log10(mx)
	if hi-lo < 0.3 {
		lo, hi = lo-0.15, hi+0.15
	}
	return lo, hi
}

// Draw renders c.
func Draw(c Chart) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	var xs, ys []float64
	for _, s := range c.Series {
		for _, p := range s.Points {
			xs, ys = append(xs, p.X), append(ys, p.Y)
		}
	}
	xlo, xhi := bounds(c.X, xs)
	ylo, yhi := bounds(c.Y, ys)
	x0, x1, y0, y1 := left, width-right, top, height-bottom
	xOf := func(v float64) int {
		l := xlo
		if v > 0 {
			l = math.Max(xlo, math.Min(xhi, math.Log10(v)))
		}
		return x0 + int(float64(x1-x0)*(l-xlo)/(xhi-xlo)+0.5)
	}
	yOf := func(v float64) int {
		l := ylo
		if v > 0 {
			l = math.Max(ylo, math.Min(yhi, math.Log10(v)))
		}
		return y1 - int(float64(y1-y0)*(l-ylo)/(yhi-ylo)+0.5)
	}
	label := func(a Axis, v float64) string {
		s := Human(v)
		if a.Percent {
			s = strconv.FormatFloat(v, 'g', 3, 64) + "%"
		}
		return s
	}
	yt := c.Y.Ticks
	if yt == nil {
		// Powers of ten, and 2× and 5× them when the axis spans little
		// more than a decade.
		mults := []float64{1}
		if yhi-ylo < 1.5 {
			mults = []float64{1, 2, 5}
		}
		for e := math.Floor(ylo); e <= math.Ceil(yhi); e++ {
			for _, m := range mults {
				yt = append(yt, m*math.Pow(10, e))
			}
		}
	}
	for _, v := range yt {
		if l := math.Log10(v); l < ylo-1e-9 || l > yhi+1e-9 {
			continue
		}
		y := yOf(v)
		line(img, x0, y, x1, y, 1, grey, false)
		s := label(c.Y, v)
		drawText(img, x0-8-textWidth(s, 2), y-5, 2, s, Black)
	}
	xt := c.X.Ticks
	if xt == nil {
		seen := map[float64]bool{}
		for _, v := range xs {
			if !seen[v] && v > 0 {
				seen[v] = true
				xt = append(xt, v)
			}
		}
		sort.Float64s(xt)
	}
	lastRight := -1000
	for _, v := range xt {
		x := xOf(v)
		line(img, x, y0, x, y1, 1, grey, false)
		s := label(c.X, v)
		if lx := x - textWidth(s, 2)/2; lx > lastRight+6 {
			drawText(img, lx, y1+8, 2, s, Black)
			lastRight = lx + textWidth(s, 2)
		}
	}
	for _, v := range c.RefY {
		line(img, x0, yOf(v), x1, yOf(v), 2, Red, true)
	}
	line(img, x0, y1, x1, y1, 2, Black, false)
	line(img, x0, y0, x0, y1, 2, Black, false)
	drawText(img, (width-textWidth(c.Title, 3))/2, 8, 3, c.Title, Black)
	drawText(img, (width-textWidth(c.X.Label, 2))/2, height-22, 2, c.X.Label, Black)
	drawText(img, 4, y0-14, 2, c.Y.Label, Black)
	for i, s := range c.Series {
		col := Palette[i%len(Palette)]
		pts := append([]Point(nil), s.Points...)
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		px, py := -1, -1
		for _, p := range pts {
			x, y := xOf(p.X), yOf(p.Y)
			if px >= 0 {
				line(img, px, py, x, y, 3, col, false)
			}
			draw.Draw(img, image.Rect(x-4, y-4, x+5, y+5), image.NewUniform(col), image.Point{}, draw.Src)
			px, py = x, y
		}
		ly := y0 + 12 + i*22
		line(img, x0+15, ly+5, x0+45, ly+5, 3, col, false)
		drawText(img, x0+55, ly, 2, s.Name, Black)
	}
	return img
}

// Human prints 1600000 as 1.6M and 200000 as 200k.
func Human(v float64) string {
	switch {
	case v >= 999.5e3: // not "1e+03k"
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 999.5: // not "1e+03"
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// font3x5 is a tiny bitmap font: 5 rows of 3 pixels per glyph; letters
// are drawn in lower case.
var font3x5 = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", ".#.", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."}, '%': {"#.#", "..#", ".#.", "#..", "#.#"},
	'/': {"..#", "..#", ".#.", "#..", "#.."}, '<': {"..#", ".#.", "#..", ".#.", "..#"},
	'>': {"#..", ".#.", "..#", ".#.", "#.."}, '(': {".#.", "#..", "#..", "#..", ".#."},
	')': {".#.", "..#", "..#", "..#", ".#."}, ',': {"...", "...", "...", ".#.", "#.."},
	'-': {"...", "...", "###", "...", "..."}, ' ': {"...", "...", "...", "...", "..."},
	'a': {"...", "##.", "..#", "###", "###"}, 'b': {"#..", "#..", "###", "#.#", "###"},
	'c': {"...", "###", "#..", "#..", "###"}, 'd': {"..#", "..#", "###", "#.#", "###"},
	'e': {".#.", "#.#", "###", "#..", ".##"}, 'f': {".##", "#..", "###", "#..", "#.."},
	'g': {".##", "#.#", ".##", "..#", "##."}, 'h': {"#..", "#..", "###", "#.#", "#.#"},
	'i': {".#.", "...", ".#.", ".#.", ".#."}, 'j': {"..#", "...", "..#", "#.#", "###"},
	'k': {"#..", "#.#", "##.", "#.#", "#.#"}, 'l': {"##.", ".#.", ".#.", ".#.", "###"},
	'm': {"...", "###", "###", "#.#", "#.#"}, 'n': {"...", "##.", "#.#", "#.#", "#.#"},
	'o': {"...", "###", "#.#", "#.#", "###"}, 'p': {"###", "#.#", "###", "#..", "#.."},
	'q': {"###", "#.#", "###", "..#", "..#"}, 'r': {"...", "###", "#..", "#..", "#.."},
	's': {".##", "#..", ".#.", "..#", "##."}, 't': {"#..", "###", "#..", "#..", "###"},
	'u': {"...", "#.#", "#.#", "#.#", "###"}, 'v': {"...", "#.#", "#.#", "#.#", ".#."},
	'w': {"...", "#.#", "###", "###", "#.#"}, 'x': {"...", "#.#", ".#.", ".#.", "#.#"},
	'y': {"#.#", "#.#", "###", "..#", "###"}, 'z': {"###", "..#", ".#.", "#..", "###"},
	'M': {"#.#", "###", "###", "#.#", "#.#"},
}

// drawText draws s at (x, y) (top left), each font pixel scale×scale.
// Upper-case letters other than M are drawn in lower case; characters
// without a glyph are blanks.
func drawText(img *image.RGBA, x, y, scale int, s string, c color.Color) {
	for _, r := range s {
		g, ok := font3x5[r]
		if !ok && r >= 'A' && r <= 'Z' {
			g, ok = font3x5[r-'A'+'a']
		}
		if !ok {
			g = font3x5[' ']
		}
		for row, ln := range g {
			for col, p := range ln {
				if p == '#' {
					draw.Draw(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), image.NewUniform(c), image.Point{}, draw.Src)
				}
			}
		}
		x += 4 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 4 * scale }

// line draws a straight line of the given thickness (Bresenham, square
// pen), dashed or solid.
func line(img *image.RGBA, x0, y0, x1, y1, thick int, c color.Color, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for i := 0; ; i++ {
		if !dashed || (i/6)%2 == 0 {
			h := thick / 2
			draw.Draw(img, image.Rect(x0-h, y0-h, x0-h+thick, y0-h+thick), image.NewUniform(c), image.Point{}, draw.Src)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
