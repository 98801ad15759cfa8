using Shim.Core.Errors;

namespace Shim.Core.Service;

/// <summary>
/// containerd's identifier rules (pkg/identifiers): 1 to 76 characters, letters and digits in runs
/// joined by single '.', '_' or '-'. containerd checks container ids when it stores a container and
/// exec ids before it asks a shim; the shim checks again because its socket also takes requests
/// from others, and an id becomes runc's last argument ("-h" would be a flag) and a file name in
/// the bundle ("../x.pid" would leave it).
/// </summary>
internal static class Identifiers
{
    /// <summary>containerd's maxLength.</summary>
    public const int MaxLength = 76;

    /// <summary>The rule in containerd's own words (its regular expression), for error messages.</summary>
    public const string Pattern = "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$";

    /// <summary>Null when <paramref name="id"/> is valid, else why not.</summary>
    public static string? Problem(string id)
    {
        if (id.Length == 0)
        {
            return "must not be empty";
        }
        if (id.Length > MaxLength)
        {
            return $"is longer than {MaxLength} characters";
        }
        bool afterSeparator = true; // the first character must be a letter or digit
        foreach (char c in id)
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                afterSeparator = false;
            }
            else if (c is ('.' or '_' or '-') && !afterSeparator)
            {
                afterSeparator = true;
            }
            else
            {
                return $"must match {Pattern}";
            }
        }
        return afterSeparator ? $"must match {Pattern}" : null;
    }

    /// <summary>
    /// Throws InvalidArgument for a container id, or an exec id when one is given (empty means the
    /// init process), that breaks the rules. <paramref name="verb"/> names the request.
    /// </summary>
    public static void Check(string verb, string id, string execId = "")
    {
        if (Problem(id) is { } problem)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"{verb}: container id \"{id}\" {problem}");
        }
        if (execId.Length > 0 && Problem(execId) is { } execProblem)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"{verb} in {id}: exec id \"{execId}\" {execProblem}");
        }
    }
}
