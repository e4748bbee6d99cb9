// Package htmlreport renders qkv's report as one self-contained HTML page:
// the model summary and findings first, then statistics across layers,
// per-head heatmaps, head-composition matrices, attention patterns and, per
// layer and projection, the singular-value spectrum and the eigenvalue
// spectral density (ESD) with its fitted power law.
//
// Everything is drawn here as inline SVG by a small writer of its own (no
// libraries, no scripts, no fonts, no network): heatmap cells are a PNG
// raster inside the SVG (one pixel per cell, scaled without smoothing),
// which keeps a 32-layer × 32-head model's report to a few megabytes.
// Sequential data use matplotlib's viridis and lines the Okabe–Ito palette
// with distinct dashes and markers, so the figures read without colour
// vision and in greyscale print. Every SVG has role="img", an aria-label, a
// <title> and a <desc>; heatmaps of up to 1024 cells carry their values as
// a table as well.
//
// Strings in Data may come from a checkpoint (architecture, tensor names,
// tokens) and are untrusted: they are escaped, their control, bidi and
// invisible characters are shown as escapes, and the page's
// Content-Security-Policy forbids every script and request, so a string
// that got through could not run or load anything either.
//
// Output is deterministic: the same Data gives the same bytes.
//
// The browser test (browser_test.go, build tag "browser") loads reports in
// headless Chromium over the DevTools protocol and checks for console
// errors, requests and empty figures; .ci/browser runs it.
package htmlreport
