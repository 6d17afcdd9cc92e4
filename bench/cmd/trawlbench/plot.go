package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"sort"
)

// Plot geometry: the x axis is log2 of the offered rate, the y axis log10
// of the loss % from 0.01% to 100% (a loss of 0 is drawn on the bottom
// edge), so the 0.1% threshold sits in the middle and is drawn dashed.
const (
	plotW, plotH   = 800, 500
	left, right    = 70, 20
	top, bottom    = 40, 60
	yMinLog, yMaxL = -2.0, 2.0
)

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	red    = color.RGBA{200, 30, 30, 255}
	colors = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}}
)

// font3x5 is a tiny bitmap font: 5 rows of 3 pixels per glyph.
var font3x5 = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", ".#.", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."}, '%': {"#.#", "..#", ".#.", "#..", "#.#"},
	'/': {"..#", "..#", ".#.", "#..", "#.."}, '<': {"..#", ".#.", "#..", ".#.", "..#"},
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

// drawText draws s at (x, y) (top left), each font pixel scale×scale;
// characters without a glyph are drawn as blanks.
func drawText(img *image.RGBA, x, y, scale int, s string, c color.Color) {
	for _, r := range s {
		g, ok := font3x5[r]
		if !ok {
			g = font3x5[' ']
		}
		for row, line := range g {
			for col, p := range line {
				if p == '#' {
					draw.Draw(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), image.NewUniform(c), image.Point{}, draw.Src)
				}
			}
		}
		x += 4 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s)) * 4 * scale }

// line draws a straight line of the given thickness (Bresenham, square pen).
func line(img *image.RGBA, x0, y0, x1, y1, thick int, c color.Color, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for i := 0; ; i++ {
		if !dashed || (i/6)%2 == 0 {
			h := thick / 2
			draw.Draw(img, image.Rect(x0-h, y0-h, x0-h+thick, y0-h+thick), image.NewUniform(c), image.Point{}, draw.Src)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
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

// plotImage draws loss % against offered rate for one format.
func plotImage(format string, steps []Step, tools []string) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	var rates []float64
	seen := map[float64]bool{}
	for _, s := range steps {
		if s.Format == format && !seen[s.Offered] {
			seen[s.Offered] = true
			rates = append(rates, s.Offered)
		}
	}
	sort.Float64s(rates)
	x0, x1 := left, plotW-right
	y0, y1 := top, plotH-bottom
	lo, hi := 1.0, 2.0
	if len(rates) > 0 {
		lo, hi = math.Log2(rates[0]), math.Log2(rates[len(rates)-1])
		if hi-lo < 1 {
			hi = lo + 1
		}
	}
	xOf := func(rate float64) int {
		return x0 + int(float64(x1-x0)*(math.Log2(rate)-lo)/(hi-lo)+0.5)
	}
	yOf := func(loss float64) int {
		l := yMinLog
		if loss > 0 {
			l = math.Max(yMinLog, math.Min(yMaxL, math.Log10(loss)))
		}
		return y1 - int(float64(y1-y0)*(l-yMinLog)/(yMaxL-yMinLog)+0.5)
	}
	// Grid and axes.
	for _, v := range []float64{0.01, 0.1, 1, 10, 100} {
		y := yOf(v)
		line(img, x0, y, x1, y, 1, grey, false)
		lbl := fmt.Sprintf("%g%%", v)
		if v == 0.01 {
			lbl = "0" // the bottom edge holds every loss ≤ 0.01%, 0 included
		}
		drawText(img, x0-8-textWidth(lbl, 2), y-5, 2, lbl, black)
	}
	line(img, x0, yOf(0.1), x1, yOf(0.1), 2, red, true)
	for _, r := range rates {
		x := xOf(r)
		line(img, x, y0, x, y1, 1, grey, false)
		lbl := human(r)
		drawText(img, x-textWidth(lbl, 2)/2, y1+8, 2, lbl, black)
	}
	line(img, x0, y1, x1, y1, 2, black, false)
	line(img, x0, y0, x0, y1, 2, black, false)
	title := format + " - loss % vs offered flows/s"
	drawText(img, (plotW-textWidth(title, 3))/2, 8, 3, title, black)
	xl := "offered flows/s"
	drawText(img, (plotW-textWidth(xl, 2))/2, plotH-22, 2, xl, black)
	// One line per tool, median loss over repetitions at each rate.
	for ti, tool := range tools {
		c := colors[ti%len(colors)]
		px, py := -1, -1
		for _, r := range rates {
			var losses []float64
			for _, s := range steps {
				if s.Format == format && s.Tool == tool && s.Offered == r && s.Error == "" {
					losses = append(losses, s.LossPct)
				}
			}
			if len(losses) == 0 {
				continue
			}
			x, y := xOf(r), yOf(median(losses))
			if px >= 0 {
				line(img, px, py, x, y, 3, c, false)
			}
			draw.Draw(img, image.Rect(x-4, y-4, x+5, y+5), image.NewUniform(c), image.Point{}, draw.Src)
			px, py = x, y
		}
		// Legend, top left inside the plot.
		ly := y0 + 12 + ti*22
		line(img, x0+15, ly+5, x0+45, ly+5, 3, c, false)
		drawText(img, x0+55, ly, 2, tool, black)
	}
	return img
}

// writePlot writes the PNG of one format.
func writePlot(path, format string, steps []Step, tools []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, plotImage(format, steps, tools)); err != nil {
		f.Close()
		return fmt.Errorf("cannot encode plot %s: %w", path, err)
	}
	return f.Close()
}
