// The API's vocabulary (types, formats, the time format) is part of segsync's own: a
// program that imports SegSync can name them without importing the client as well.
@_exported import struct FullStoryAPI.RateLimit
@_exported import enum FullStoryAPI.Timestamp
@_exported import enum FullStoryAPI.Dialect
@_exported import enum FullStoryAPI.ExportType
@_exported import enum FullStoryAPI.ExportFormat
