import Foundation
import FullStoryContract

extension ExportRequest {
    /// The request that exports one partition of an export.
    public init(partition: Partition, export: ExportSpec) {
        let segmentRange = DesiredPartitions.segmentTimeRange(export, partitionEnd: partition.end)
        self.init(
            segmentID: export.segment,
            type: export.type,
            format: export.format,
            timeRange: TimeRange(start: partition.start, end: partition.end),
            segmentTimeRange: segmentRange.map { TimeRange(start: $0.start, end: $0.end) },
            timezone: export.timeZoneName,
            fields: export.fields.isEmpty ? nil : export.fields)
    }
}
