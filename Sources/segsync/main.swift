import SegSyncCLI

await SegSyncCLI.main()
