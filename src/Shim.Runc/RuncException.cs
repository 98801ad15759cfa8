using System.Diagnostics.CodeAnalysis;

namespace Shim.Runc;

/// <summary>A runc command failed; Message carries runc's own error text.</summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every RuncException names the runc command and its exit")]
public sealed class RuncException : Exception
{
    /// <summary>Creates the exception for <paramref name="verb"/> exiting with <paramref name="exitCode"/>.</summary>
    public RuncException(string verb, int exitCode, string runcMessage)
        : base(Describe(verb, runcMessage))
    {
        Verb = verb;
        ExitCode = exitCode;
        RuncMessage = runcMessage;
    }

    /// <summary>The runtime binary could not be started at all (missing, not executable): nothing ran.</summary>
    public static RuncException NotStarted(string verb, string binary, string reason) =>
        new(verb, -1, $"cannot execute runtime binary {binary}: {reason}") { WasNotStarted = true };

    /// <summary>True when the runtime binary itself could not be executed (see <see cref="NotStarted"/>).</summary>
    public bool WasNotStarted { get; private init; }

    // runc 1.1+ logs its own "runc create failed: ..." as the error; do not say it twice
    private static string Describe(string verb, string runcMessage)
    {
        string prefix = $"runc {verb} failed: ";
        return runcMessage.StartsWith(prefix, StringComparison.Ordinal) ? runcMessage : prefix + runcMessage;
    }

    /// <summary>The runc subcommand (create, start, kill...).</summary>
    public string Verb { get; }

    /// <summary>runc's exit status (128+signal when killed).</summary>
    public int ExitCode { get; }

    /// <summary>runc's error text, from its JSON log or stderr.</summary>
    public string RuncMessage { get; }

    /// <summary>
    /// runc's wording for a container that is gone ("does not exist") or whose processes all exited
    /// ("not running", "process already finished"); matching runc's text lives here alone.
    /// </summary>
    public bool IsNotFound =>
        RuncMessage.Contains("does not exist", StringComparison.Ordinal) ||
        RuncMessage.Contains("not running", StringComparison.Ordinal) ||
        RuncMessage.Contains("already finished", StringComparison.Ordinal) ||
        RuncMessage.Contains("no such process", StringComparison.Ordinal);
}
