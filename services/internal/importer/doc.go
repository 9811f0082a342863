// Package importer is the logic of the playlist.import job: it reads a playlist (m3u, xspf, csv or
// json), normalises and de-duplicates its tracks, resolves each one and adds it to the owner's LIBRARY
// bucket, reporting progress per track.
//
// The pieces are usable on their own: Parse and DetectFormat read playlists (the CLI uses them),
// Normalize and Identity define when two entries are the same track, Library reads and writes the
// LIBRARY bucket (the gateway lists it), and Importer.Run ties them together for the worker.
//
// Everything a client sends is treated as hostile: content is bounded by Limits before and while it is
// read, text is cleaned of control characters, and nothing from a playlist reaches a key except through
// a hash (streams.TrackKey).
package importer
