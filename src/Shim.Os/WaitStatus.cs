namespace Shim.Os;

/// <summary>Decodes the status word filled in by wait4(2).</summary>
internal static class WaitStatus
{
    /// <summary>Exit code for a normal exit, 128+signal for a signal death (the shell convention containerd uses).</summary>
    internal static int ToExitCode(int status)
    {
        int termSignal = status & 0x7f;
        if (termSignal == 0)
        {
            return (status >> 8) & 0xff;   // WIFEXITED: WEXITSTATUS
        }
        if (termSignal != 0x7f)
        {
            return 128 + termSignal;       // WIFSIGNALED: WTERMSIG
        }
        return 128 + ((status >> 8) & 0xff);  // stopped; never requested (no WUNTRACED), kept total
    }
}
