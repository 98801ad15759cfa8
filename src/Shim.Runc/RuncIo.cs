using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Shim.Runc;

/// <summary>What runc's own stdin/stdout/stderr are connected to for one call.</summary>
public sealed class RuncIo
{
    /// <summary>No handles: runc's stdin is /dev/null, stdout and stderr are captured.</summary>
    public static readonly RuncIo Captured = new();

    /// <summary>Handle given to runc as fd 0 (null: /dev/null, or a pipe fed with <see cref="Input"/>).</summary>
    public SafeHandle? Stdin { get; init; }

    /// <summary>Handle given to runc as fd 1 (null: captured into the result).</summary>
    public SafeHandle? Stdout { get; init; }

    /// <summary>Handle given to runc as fd 2 (null: captured for error text).</summary>
    public SafeHandle? Stderr { get; init; }

    /// <summary>Bytes written to runc's stdin (used when <see cref="Stdin"/> is null).</summary>
    public ReadOnlyMemory<byte> Input { get; init; }
}

/// <summary>Exit code and captured stdout of a finished runc call.</summary>
[SuppressMessage("Performance", "CA1819:Properties should not return arrays", Justification = "the bytes runc printed, handed over once; a copy would be waste")]
public readonly record struct RuncResult(int ExitCode, byte[] Stdout, string Stderr)
{
    /// <summary>runc printed more than the runner keeps (<see cref="RuncRunner.OutputLimit"/>) and was cut off: the output is not whole.</summary>
    public bool Truncated { get; init; }
}

/// <summary>Runs one runc command line; faked in unit tests.</summary>
public interface IRuncRunner
{
    /// <summary>Runs <paramref name="args"/> (argv[0] is the runc binary) and waits for it.</summary>
    Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct);
}
