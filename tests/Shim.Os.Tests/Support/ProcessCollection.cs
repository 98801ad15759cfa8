namespace Shim.Os.Tests.Support;

/// <summary>
/// Tests that start children share the one process-wide reaper and, with pid_max as low as
/// 32768, could see pids recycled by each other; they run one at a time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection
{
    public const string Name = "processes";
}
