package web

import (
	"strconv"
	"time"
)

// Charts are server-rendered SVG: no script, readable by screen readers
// through the svg's title and description, and each comes with its data
// as a table (the template puts it in a <details> under the chart).

// chartColors are the Okabe–Ito palette, told apart with colour-blindness.
var chartColors = []string{"#0072B2", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#D55E00", "#F0E442"}

// chartSeries is one kind of bar, stacked per day.
type chartSeries struct {
	Label  string
	Color  string
	Values []int
}

type chartBar struct {
	X, Y, W, H int
	Color      string
	Title      string // what a pointer over the bar shows
}

type chartTick struct {
	X, Y  int
	Label string
}

// svgChart is a stacked bar chart of one value per day per series.
type svgChart struct {
	ID, Title, Desc string
	W, H            int
	Bars            []chartBar
	YTicks, XTicks  []chartTick
	Legend          []chartSeries
	PlotX, PlotY    int // the plot area's bottom-left corner
	PlotW           int
	Head            []string   // the data table's header: day, then each series
	Rows            [][]string // one per day
	Empty           bool
}

const (
	chartW, chartH              = 720, 220
	chartLeft, chartBottom      = 48, 28
	chartTop, chartRight        = 12, 12
	chartXLabelEvery, chartGrid = 7, 4
)

// newBarChart lays out series over days.
func newBarChart(id, title, desc, l string, days []time.Time, series []chartSeries) svgChart {
	c := svgChart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Legend: series,
		PlotX: chartLeft, PlotY: chartH - chartBottom, PlotW: chartW - chartLeft - chartRight}
	c.Head = []string{tr(l, "admin.audit.chart.day")}
	for _, s := range series {
		c.Head = append(c.Head, s.Label)
	}
	peak := 0
	for i := range days {
		sum := 0
		for _, s := range series {
			sum += s.Values[i]
		}
		peak = max(peak, sum)
	}
	c.Empty = peak == 0
	top := niceCeil(peak)
	plotH := c.PlotY - chartTop
	for g := 0; g <= chartGrid; g++ {
		v := top * g / chartGrid
		c.YTicks = append(c.YTicks, chartTick{X: chartLeft - 6, Y: c.PlotY - plotH*g/chartGrid, Label: strconv.Itoa(v)})
	}
	n := len(days)
	slot := c.PlotW / max(n, 1)
	barW := max(slot*7/10, 1)
	for i, day := range days {
		x := chartLeft + i*slot + (slot-barW)/2
		y := c.PlotY
		row := []string{dayLabel(l, day)}
		for _, s := range series {
			v := s.Values[i]
			row = append(row, strconv.Itoa(v))
			if v == 0 {
				continue
			}
			h := max(plotH*v/top, 1)
			y -= h
			c.Bars = append(c.Bars, chartBar{X: x, Y: y, W: barW, H: h, Color: s.Color,
				Title: row[0] + " · " + s.Label + ": " + strconv.Itoa(v)})
		}
		c.Rows = append(c.Rows, row)
		if (n-1-i)%chartXLabelEvery == 0 {
			c.XTicks = append(c.XTicks, chartTick{X: x + barW/2, Y: c.PlotY + 18, Label: row[0]})
		}
	}
	return c
}

// niceCeil is the axis's top: peak rounded up to 1, 2 or 5 times a power
// of ten, and divisible into the grid's steps.
func niceCeil(peak int) int {
	if peak <= chartGrid {
		return chartGrid
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if top := m * p * chartGrid; top >= peak {
				return top
			}
		}
	}
}

// dayLabel is a day on an axis and in the data table.
func dayLabel(l string, d time.Time) string {
	if l == "ja" {
		return d.Format("1月2日")
	}
	return d.Format("Jan 2")
}
