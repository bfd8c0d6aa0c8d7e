/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manager protocol frames from arbitrary bytes.  The first byte picks the
 * direction and, for a response, the request type it answers; the rest is
 * the frame.  Whatever decodes must re-encode to exactly the same bytes
 * (one encoding per message), and the stream framer must agree with the
 * decoder about where the frame ends.  A first byte of 0x40..0x7f feeds
 * the rest to the instance's TPM2_PCR_Read parser instead (what the
 * engine answers, made into PCR_READ's answer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mgrproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mgr_rsp rsp;
	uint8_t out[MGR_MAX_FRAME];
	struct mgr_req req;
	size_t outlen;
	uint8_t sel;
	int flen, rc;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;

	if ((sel & 0xc0) == 0x40) {
		static struct mgr_pcr_read_rsp acc;
		uint8_t cmd[MGR_PCR_READ_CMD_LEN];
		uint32_t trc, mask = 0xffffff;
		size_t half = size / 2;

		memset(&acc, 0, sizeof(acc));
		/* Two reads in a row, as the instance makes them. */
		if (mgrproto_pcr_read_parse(data, half, mask, &acc, &trc) == 0)
			(void)mgrproto_pcr_read_parse(data + half, size - half,
						      mask, &acc, &trc);
		if (acc.count > MGR_PCRS ||
		    acc.count != (uint32_t)__builtin_popcount(acc.pcr_mask) ||
		    (acc.pcr_mask & ~mask))
			abort();
		if (acc.count) {
			rsp.type = MGR_MSG_PCR_READ;
			rsp.status = MGR_SUCCESS;
			rsp.u.pcr_read = acc;
			if (mgrproto_encode_rsp(&rsp, out, &outlen) != 0 ||
			    mgrproto_decode_rsp(MGR_MSG_PCR_READ, out, outlen,
						&rsp) != 0)
				abort();
		}
		if ((acc.pcr_mask == mask) !=
		    (mgrproto_pcr_read_cmd(mask, &acc, cmd) != 0))
			abort();
		return 0;
	}

	flen = mgrproto_frame_len(data, size);
	if (flen > 0 && ((size_t)flen > size || flen < MGR_HDR_LEN ||
			 flen > MGR_MAX_FRAME))
		abort();

	if (sel & 0x80) {
		enum mgr_msg t = (enum mgr_msg)((sel & 0x7f) % MGR_MSG_COUNT);

		rc = mgrproto_decode_rsp(t, data, size, &rsp);
		if (rc == 0) {
			if (rsp.type != t || rsp.status >= MGR_STATUS_COUNT)
				abort();
			/* A run state the instance acts on is a known one. */
			if (t == MGR_MSG_XEN_PEER_STATE &&
			    rsp.status == MGR_SUCCESS &&
			    rsp.u.xen_state.state >= MGR_XEN_RUN_COUNT)
				abort();
			if (mgrproto_encode_rsp(&rsp, out, &outlen) != 0 ||
			    outlen != size || memcmp(out, data, size) != 0)
				abort();
		}
		mgrproto_rsp_wipe(&rsp);
	} else {
		rc = mgrproto_decode_req(data, size, &req);
		if (rc == 0) {
			if (mgrproto_encode_req(&req, out, &outlen) != 0 ||
			    outlen != size || memcmp(out, data, size) != 0)
				abort();
			/* The manager builds xenstore paths from these. */
			if ((req.type == MGR_MSG_XEN_PEER ||
			     req.type == MGR_MSG_XEN_PEER_STATE) &&
			    (req.u.xen_peer.domid > MGR_XEN_DOMID_MAX ||
			     req.u.xen_peer.devid > MGR_XEN_DEVID_MAX))
				abort();
			if (req.type == MGR_MSG_GET_QUOTE) {
				static const uint8_t uuid[MGR_UUID_LEN];
				uint8_t qd[MGR_HASH_LEN];

				/* What decoded is always fit for a quote. */
				if (mgrproto_deepquote_qd(uuid, req.u.quote.pcr_mask,
							  req.u.quote.pcr_digest,
							  req.u.quote.nonce,
							  req.u.quote.nonce_len, qd))
					abort();
			}
		} else {
			uint8_t st[MGR_HDR_LEN];

			mgrproto_encode_status(data, size, mgrproto_err_status(rc), st);
		}
	}
	/* A frame that decodes is exactly one whole frame to the framer. */
	if (rc == 0 && flen != (int)size)
		abort();
	(void)mgrproto_strerror(rc);
	return 0;
}
