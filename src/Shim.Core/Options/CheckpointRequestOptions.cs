using Google.Protobuf.WellKnownTypes;
using Shim.Os.Terminals;

namespace Shim.Core.Options;

/// <summary>The options of a Checkpoint request, whatever message type the client sent them in.</summary>
public sealed record CheckpointRequestOptions
{
    /// <summary>Stop the container after the dump (no --leave-running).</summary>
    public bool Exit { get; init; }
    /// <summary>--tcp-established.</summary>
    public bool OpenTcp { get; init; }
    /// <summary>--ext-unix-sk.</summary>
    public bool ExternalUnixSockets { get; init; }
    /// <summary>--shell-job.</summary>
    public bool Terminal { get; init; }
    /// <summary>--file-locks.</summary>
    public bool FileLocks { get; init; }
    /// <summary>--empty-ns, one per entry.</summary>
    public IReadOnlyList<string> EmptyNamespaces { get; init; } = [];
    /// <summary>Image path of the options (the request's path wins, as in the Go shim).</summary>
    public string ImagePath { get; init; } = "";
    /// <summary>CRIU work dir; kept after the dump when given.</summary>
    public string WorkPath { get; init; } = "";
    /// <summary>Parent image for an incremental dump (containerd 2.4+).</summary>
    public string ParentPath { get; init; } = "";

    /// <summary>
    /// Decodes containerd.runc.v1.CheckpointOptions, or the legacy containerd.linux.runc.CheckpointOptions
    /// (whose image_path and work_path carry swapped field numbers); none at all means defaults.
    /// cgroups_mode is ignored, as by the Go shim.
    /// </summary>
    public static CheckpointRequestOptions Decode(Any? any) =>
        AnyOptions.Decode(any, "checkpoint options", static (name, value) => name switch
        {
            "containerd.runc.v1.CheckpointOptions" => From(Containerd.Runc.V1.CheckpointOptions.Parser.ParseFrom(value)),
            "containerd.linux.runc.CheckpointOptions" => From(Containerd.Linux.Runc.CheckpointOptions.Parser.ParseFrom(value)),
            _ => null,
        });

    private static CheckpointRequestOptions From(Containerd.Runc.V1.CheckpointOptions o) => new()
    {
        Exit = o.Exit,
        OpenTcp = o.OpenTcp,
        ExternalUnixSockets = o.ExternalUnixSockets,
        Terminal = o.Terminal,
        FileLocks = o.FileLocks,
        EmptyNamespaces = [.. o.EmptyNamespaces],
        ImagePath = o.ImagePath,
        WorkPath = o.WorkPath,
        ParentPath = o.ParentPath,
    };

    private static CheckpointRequestOptions From(Containerd.Linux.Runc.CheckpointOptions o) => new()
    {
        Exit = o.Exit,
        OpenTcp = o.OpenTcp,
        ExternalUnixSockets = o.ExternalUnixSockets,
        Terminal = o.Terminal,
        FileLocks = o.FileLocks,
        EmptyNamespaces = [.. o.EmptyNamespaces],
        ImagePath = o.ImagePath,
        WorkPath = o.WorkPath,
    };
}
