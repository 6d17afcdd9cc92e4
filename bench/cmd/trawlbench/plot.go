package main

import (
	"sort"

	"github.com/trawlsec/trawl/bench/plot"
	"github.com/trawlsec/trawl/bench/report"
)

// lossChart is loss % against offered rate for one format, one line per
// tool at the median loss over repetitions: log axes from 0.01% (a loss
// of 0 is drawn on that edge) to 100%, with the 0.1% threshold dashed.
func lossChart(format string, steps []Step, tools []string) plot.Chart {
	c := plot.Chart{
		Title: format + " - loss % vs offered flows/s",
		X:     plot.Axis{Label: "offered flows/s"},
		Y:     plot.Axis{Label: "loss", Min: 0.01, Max: 100, Ticks: []float64{0.01, 0.1, 1, 10, 100}, Percent: true},
		RefY:  []float64{0.1},
	}
	for _, tool := range tools {
		losses := map[float64][]float64{}
		for _, s := range steps {
			if s.Format == format && s.Tool == tool && s.Error == "" {
				losses[s.Offered] = append(losses[s.Offered], s.LossPct)
			}
		}
		rates := make([]float64, 0, len(losses))
		for r := range losses {
			rates = append(rates, r)
		}
		sort.Float64s(rates)
		ser := plot.Series{Name: tool}
		for _, r := range rates {
			ser.Points = append(ser.Points, plot.Point{X: r, Y: report.Median(losses[r])})
		}
		c.Series = append(c.Series, ser)
	}
	return c
}

// writePlot writes the PNG of one format.
func writePlot(path, format string, steps []Step, tools []string) error {
	return plot.Write(path, lossChart(format, steps, tools))
}
