"""SAM-2-style tracker modules: prompt encoder, two-way mask decoder, memory attention, memory encoder."""
