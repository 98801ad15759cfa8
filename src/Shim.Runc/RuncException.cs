using System.Diagnostics.CodeAnalysis;

namespace Shim.Runc;

/// <summary>
/// A call of the runtime binary (runc, or a compatible one such as crun chosen with BinaryName)
/// failed; Message names the binary and the subcommand and carries the runtime's own error text.
/// </summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every RuncException names the binary, the subcommand and its exit")]
public sealed class RuncException : Exception
{
    /// <summary>Creates the exception for <paramref name="binary"/> <paramref name="verb"/> exiting with <paramref name="exitCode"/>.</summary>
    public RuncException(string binary, string verb, int exitCode, string runcMessage)
        : base(Describe(NameOf(binary), verb, runcMessage))
    {
        Binary = binary;
        Verb = verb;
        ExitCode = exitCode;
        RuncMessage = runcMessage;
    }

    /// <summary>The runtime binary itself could not be executed (missing, not executable): nothing ran.</summary>
    public static RuncException NotStarted(string binary, string verb, string reason) =>
        new(binary, verb, -1, $"cannot execute runtime binary {binary}: {reason}") { WasNotStarted = true };

    /// <summary>True when the runtime binary itself could not be executed (see <see cref="NotStarted"/>).</summary>
    public bool WasNotStarted { get; private init; }

    /// <summary>The runtime binary as it was run (an absolute path).</summary>
    public string Binary { get; }

    /// <summary>The runtime's name as users know it: the binary's file name ("runc", "crun").</summary>
    public string Runtime => NameOf(Binary);

    /// <summary>The subcommand (create, start, kill...).</summary>
    public string Verb { get; }

    /// <summary>The runtime's exit status (128+signal when killed, -1 when it never ran or was killed by the watchdog).</summary>
    public int ExitCode { get; }

    /// <summary>The runtime's own error text, from its JSON log or stderr.</summary>
    public string RuncMessage { get; }

    /// <summary>The file name of <paramref name="binary"/> ("crun" for /usr/bin/crun).</summary>
    public static string NameOf(string binary) =>
        Path.GetFileName(binary) is { Length: > 0 } name ? name : binary;

    /// <summary>
    /// "&lt;name&gt; &lt;verb&gt; failed: &lt;text&gt;". runc 1.1+ logs its own "runc create failed: ..."
    /// (whatever the binary is called) and runc exec its "exec failed: ...": said once, not twice.
    /// </summary>
    private static string Describe(string name, string verb, string runcMessage)
    {
        string text = runcMessage;
        foreach (string own in (ReadOnlySpan<string>)[$"runc {verb} failed: ", $"{name} {verb} failed: ", $"{verb} failed: "])
        {
            if (text.StartsWith(own, StringComparison.Ordinal))
            {
                text = text[own.Length..];
                break;
            }
        }
        return $"{name} {verb} failed: {text}";
    }

    /// <summary>
    /// The runtime's wording for a container that is gone or whose processes all exited, for the
    /// calls that act on an existing container (never create, restore or features: a "does not
    /// exist" there is about a path or a mount of the new container, and containerd's shim answers
    /// Unknown for those). Matching the runtimes' texts lives here alone. runc: "container does not
    /// exist", "container not running", "process already finished", "no such process". crun 1.22+:
    /// "container `c1` does not exist: ..."; older crun (Debian 12's 1.8): "error opening file
    /// `&lt;root&gt;/c1/status`: No such file or directory"; a process that is gone: "container `c1`
    /// is not running", "kill container: No such process" (strerror's capital).
    /// </summary>
    public bool IsNotFound =>
        Verb is not ("create" or "restore" or "features") &&
        (RuncMessage.Contains("does not exist", StringComparison.Ordinal) ||
         RuncMessage.Contains("not running", StringComparison.Ordinal) ||
         RuncMessage.Contains("already finished", StringComparison.Ordinal) ||
         RuncMessage.Contains("no such process", StringComparison.OrdinalIgnoreCase) ||
         RuncMessage.Contains("/status`: No such file or directory", StringComparison.Ordinal));
}
