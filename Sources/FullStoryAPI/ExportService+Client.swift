import FullStoryContract

/// The real ``ExportService``: FullStory's API over HTTP.
extension FullStoryClient: ExportService {}
